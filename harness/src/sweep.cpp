#include "xposcheck/harness/sweep.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <thread>

#include "xposcheck/harness/builtin_candidates.hpp"
#include "xposcheck/harness/compare.hpp"
#include "xposcheck/harness/diagnosis.hpp"
#include "xposcheck/harness/shard.hpp"
#include "xposcheck/reference/inputs.hpp"
#include "xposcheck/reference/threads.hpp"

namespace xposcheck {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Everything the candidates of one (case, dtype) share: inputs, golden outputs, tables.
struct Prepared {
  const GridCase* gc;
  DType dtype;
  Inputs inputs;
  Golden golden;
  std::shared_ptr<const RotaryTables> tables;
  double golden_s = 0;
  std::optional<Record> yardstick;  // fp32-angles, for the relative rule
};

// Logits cost rows * (M+N) * D per head for the golden path and again per
// candidate: long cases compare a deterministic sample of query rows (at least 8,
// at most max_rows) so that each logits pass stays near 2^24 multiply-adds.
std::size_t logit_rows_for(const Case& c, std::size_t max_rows) {
  constexpr double kBudget = 16777216.0;
  const double per_row = static_cast<double>(c.batch * c.heads * c.key_rows() * c.head_dim);
  const auto affordable = static_cast<std::size_t>(std::max(8.0, kBudget / per_row));
  return max_rows == 0 ? affordable : std::min(max_rows, affordable);
}

Prepared prepare(const GridCase& gc, DType dtype, std::size_t logit_rows) {
  const auto t0 = std::chrono::steady_clock::now();
  Prepared p{&gc, dtype, generate_inputs(gc.params, gc.seed, dtype), {}, {}, 0, {}};
  GoldenOptions options;
  options.max_logit_rows = logit_rows_for(gc.params, logit_rows);
  p.golden = golden_fast(gc.params, p.inputs.q, p.inputs.k, options);
  p.tables = shared_tables(gc.params);
  p.golden_s = seconds_since(t0);
  return p;
}

Record blank_record(const std::string& candidate, const GridCase& gc, DType dtype) {
  Record r;
  r.candidate = candidate;
  r.case_id = gc.id;
  r.params = gc.params;
  r.seed = gc.seed;
  r.dtype = dtype;
  return r;
}

// Runs the case on a fresh instance of a built-in candidate (the history-dependence
// hypothesis); other candidates cannot be re-created, so that hypothesis is skipped.
FreshRun fresh_run_of(const Candidate& candidate, const Prepared& p) {
  const auto probe = make_builtin(candidate.name());
  if (!probe || probe->description() != candidate.description()) return {};
  return [name = candidate.name(), &p] {
    const auto fresh = make_builtin(name);
    return attempt(*fresh, Job{&p.gc->params, p.dtype, &p.inputs.q, &p.inputs.k});
  };
}

Record judge(const Candidate& candidate, const Prepared& p, const Attempt& attempt,
             double candidate_s, const Tolerance& tol, const DiagnosisOptions& diagnosis) {
  Record r = blank_record(candidate.name(), *p.gc, p.dtype);
  r.timing.golden_s = p.golden_s;
  r.timing.candidate_s = candidate_s;
  const auto t0 = std::chrono::steady_clock::now();
  if (const auto* failure = std::get_if<CandidateFailure>(&attempt)) {
    record_failure(p.gc->params, *failure, r);
  } else {
    CompareOptions options;
    if (p.yardstick) options.yardstick = &*p.yardstick;
    compare_outputs(p.gc->params, p.dtype, p.golden, *p.tables, std::get<CandidateOutput>(attempt),
                    tol, r, options);
  }
  r.timing.compare_s = seconds_since(t0);
  const DiagnosisInput input{&p.gc->params, p.dtype, &p.inputs.q, &p.inputs.k, &p.golden,
                             p.tables.get(), &tol, std::get_if<CandidateOutput>(&attempt),
                             fresh_run_of(candidate, p), candidate.stateful()};
  diagnose_record(input, r, diagnosis);
  return r;
}

Record run_prepared(Candidate& candidate, const Prepared& p, const Tolerance& tol,
                    const DiagnosisOptions& diagnosis) {
  const Job job{&p.gc->params, p.dtype, &p.inputs.q, &p.inputs.k};
  const auto t0 = std::chrono::steady_clock::now();
  const Attempt a = attempt(candidate, job);
  return judge(candidate, p, a, seconds_since(t0), tol, diagnosis);
}

void add_yardstick(Prepared& p, const Tolerance& tol) {
  if (tol.rule != ToleranceRule::relative) return;
  auto reference = make_builtin("fp32-angles");
  DiagnosisOptions no_diagnosis;
  no_diagnosis.enabled = false;
  p.yardstick = run_prepared(*reference, p, tol, no_diagnosis);
}

struct Unit {
  const GridCase* gc;
  DType dtype;
  std::size_t order;
};

class Sweeper {
 public:
  Sweeper(const Grid& grid, const SweepOptions& options, ResultsStore& store,
          const ProgressCallback& progress)
      : grid_(grid), options_(options), store_(store), progress_(progress) {}

  std::vector<Unit> units() const;
  std::size_t count_pending(const std::vector<Unit>& units,
                            const std::vector<std::unique_ptr<Candidate>>& candidates) const;
  void parallel_pass(const std::vector<Unit>& units, const std::vector<Candidate*>& candidates);
  void serial_pass(const std::vector<Unit>& units, Candidate& candidate);
  void batched_pass(const std::vector<Unit>& units, Candidate& candidate);
  void set_total(std::size_t total) { progress_state_.total = total; }

 private:
  Tolerance tolerance(DType t) const { return resolve_tolerance(t, grid_.tolerance, options_.tolerance); }
  bool pending(const Candidate& c, const Unit& u) const {
    return !store_.done(blank_record(c.name(), *u.gc, u.dtype).key());
  }
  Prepared prepare_unit(const Unit& u) const {
    const Tolerance tol = tolerance(u.dtype);
    Prepared p = prepare(*u.gc, u.dtype, options_.max_logit_rows);
    add_yardstick(p, tol);
    return p;
  }
  void finished(Record r);
  // Threads for `work` units: --jobs, else every core; never more than the units.
  unsigned worker_count(std::size_t work) const {
    const unsigned jobs = options_.jobs ? options_.jobs : std::max(1u, std::thread::hardware_concurrency());
    return static_cast<unsigned>(std::min<std::size_t>(jobs, std::max<std::size_t>(1, work)));
  }

  const Grid& grid_;
  const SweepOptions& options_;
  ResultsStore& store_;
  const ProgressCallback& progress_;
  std::mutex progress_mutex_;
  Progress progress_state_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

std::vector<Unit> Sweeper::units() const {
  const std::vector<DType>& dtypes = options_.dtypes.empty() ? grid_.dtypes : options_.dtypes;
  std::vector<Unit> units;
  for (const GridCase& gc : grid_.cases) {
    for (DType t : dtypes) units.push_back({&gc, t, units.size()});
  }
  if (options_.shard) {
    std::vector<double> costs;
    for (const Unit& u : units) costs.push_back(estimated_cost(u.gc->params));
    const std::vector<std::size_t> owner = assign_shards(costs, options_.shard->count);
    std::erase_if(units, [&](const Unit& u) { return owner[u.order] + 1 != options_.shard->index; });
  }
  return units;
}

std::size_t Sweeper::count_pending(const std::vector<Unit>& units,
                                   const std::vector<std::unique_ptr<Candidate>>& candidates) const {
  std::size_t n = 0;
  for (const Unit& u : units) {
    for (const auto& c : candidates) n += pending(*c, u) ? 1 : 0;
  }
  return n;
}

void Sweeper::finished(Record r) {
  std::lock_guard lock(progress_mutex_);
  ++progress_state_.done;
  if (fails_gate(r.outcome)) ++progress_state_.failures;
  progress_state_.elapsed_s = seconds_since(start_);
  progress_state_.last = &r;
  if (progress_) progress_(progress_state_);
  progress_state_.last = nullptr;
  store_.add(std::move(r));
}

void Sweeper::parallel_pass(const std::vector<Unit>& all, const std::vector<Candidate*>& candidates) {
  std::vector<Unit> units;
  for (const Unit& u : all) {
    if (std::any_of(candidates.begin(), candidates.end(), [&](Candidate* c) { return pending(*c, u); }))
      units.push_back(u);
  }
  // Largest first, so the long cases do not end up alone at the tail.
  std::stable_sort(units.begin(), units.end(), [](const Unit& a, const Unit& b) {
    return estimated_cost(a.gc->params) > estimated_cost(b.gc->params);
  });
  unsigned jobs = worker_count(units.size());
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    std::optional<SerialScope> serial;
    if (jobs > 1) serial.emplace();  // the workers already use every core
    for (std::size_t i = next++; i < units.size(); i = next++) {
      const Prepared p = prepare_unit(units[i]);
      for (Candidate* c : candidates) {
        if (pending(*c, units[i]))
          finished(run_prepared(*c, p, tolerance(units[i].dtype), options_.diagnosis));
      }
    }
  };
  std::vector<std::thread> threads;
  for (unsigned t = 1; t < jobs; ++t) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
}

void Sweeper::serial_pass(const std::vector<Unit>& units, Candidate& candidate) {
  for (const Unit& u : units) {
    if (pending(candidate, u))
      finished(run_prepared(candidate, prepare_unit(u), tolerance(u.dtype), options_.diagnosis));
  }
}

void Sweeper::batched_pass(const std::vector<Unit>& all, Candidate& candidate) {
  std::vector<Unit> units;
  for (const Unit& u : all) {
    if (pending(candidate, u)) units.push_back(u);
  }
  const std::size_t size = std::max<std::size_t>(1, candidate.batch_size());
  for (std::size_t begin = 0; begin < units.size(); begin += size) {
    const std::size_t end = std::min(units.size(), begin + size);
    std::vector<Prepared> prepared;
    std::vector<Job> jobs;
    for (std::size_t i = begin; i < end; ++i) prepared.push_back(prepare_unit(units[i]));
    for (const Prepared& p : prepared) jobs.push_back({&p.gc->params, p.dtype, &p.inputs.q, &p.inputs.k});
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<Attempt> attempts = candidate.run_batch(jobs);
    const double per_job = seconds_since(t0) / static_cast<double>(jobs.size());
    for (std::size_t i = 0; i < prepared.size(); ++i) {
      const Attempt missing = CandidateFailure{FailureKind::crash, "candidate returned no result for this case"};
      const Attempt& a = i < attempts.size() ? attempts[i] : missing;
      finished(judge(candidate, prepared[i], a, per_job, tolerance(prepared[i].dtype),
                     options_.diagnosis));
    }
  }
}

}  // namespace

void run_sweep(const Grid& grid, std::vector<std::unique_ptr<Candidate>>& candidates,
               const SweepOptions& options, ResultsStore& store, const ProgressCallback& progress) {
  // Cases run one per core: BLAS's own threads would only contend with them.
  if (options.jobs != 1 && std::thread::hardware_concurrency() > 1) set_blas_threads(1);
  Sweeper sweeper(grid, options, store, progress);
  const std::vector<Unit> units = sweeper.units();
  sweeper.set_total(sweeper.count_pending(units, candidates));
  std::vector<Candidate*> shared;
  for (auto& c : candidates) {
    if (!c->stateful() && c->batch_size() <= 1) shared.push_back(c.get());
  }
  if (!shared.empty()) sweeper.parallel_pass(units, shared);
  for (auto& c : candidates) {
    if (c->stateful()) sweeper.serial_pass(units, *c);
    else if (c->batch_size() > 1) sweeper.batched_pass(units, *c);
  }
}

Record evaluate_one(Candidate& candidate, const GridCase& gc, DType dtype, const Tolerance& tolerance,
                    std::size_t max_logit_rows, const DiagnosisOptions& diagnosis) {
  Prepared p = prepare(gc, dtype, max_logit_rows);
  add_yardstick(p, tolerance);
  return run_prepared(candidate, p, tolerance, diagnosis);
}

}  // namespace xposcheck
