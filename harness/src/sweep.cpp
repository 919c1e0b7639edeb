#include "xposcheck/harness/sweep.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <exception>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "xposcheck/harness/compare.hpp"
#include "xposcheck/harness/diagnosis.hpp"
#include "activity.hpp"
#include "blank_record.hpp"
#include "parallel_for.hpp"
#include "xposcheck/harness/stream.hpp"
#include "xposcheck/harness/shard.hpp"
#include "xposcheck/harness/packed.hpp"
#include "xposcheck/harness/gate.hpp"
#include "xposcheck/reference/golden_blocks.hpp"
#include "xposcheck/reference/inputs.hpp"
#include "xposcheck/reference/packed.hpp"

namespace xposcheck {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Everything the candidates of one (case, dtype, pass) share: inputs, golden outputs,
// tables. For the backward pass also the upstream gradients, and `golden` holds the
// golden gradients (dq in q_out, dk in k_out; no logits).
struct Prepared {
  const GridCase* gc = nullptr;
  DType dtype = DType::fp32;
  Inputs inputs;
  Golden golden;
  std::shared_ptr<const RotaryTables> tables;
  double inputs_s = 0, golden_s = 0;
  std::optional<Record> yardstick;  // for the relative rule
  Pass pass = Pass::forward;
  Upstream upstream;                // backward only
  std::optional<StreamCalls> calls; // a stream's calls and their inputs (forward only)
  std::optional<Case> one_call;     // a stream's case in one call, for the consistency check
  // A packed batch: each sequence prepared as a case of its own, on its rows of the inputs.
  std::shared_ptr<std::vector<GridCase>> part_cases;
  std::shared_ptr<std::vector<Prepared>> parts;
  // A long case given to a candidate that takes input rows (blocks.hpp): no inputs or
  // golden outputs here; the job carries the rows, and the judging is by blocks.
  std::optional<BlockOptions> in_blocks;

  // The case in one call, for the pass (the backward job carries the upstream gradients).
  Job whole_job() const {
    if (in_blocks) {
      Job job{&gc->params, dtype, nullptr, nullptr};
      const GridCase* c = gc;
      const DType t = dtype;
      job.input_rows = [c, t](bool query, long first, long count, double* out) {
        generate_rows(c->params, c->seed, t, query, first, count, out);
      };
      job.input_block_rows = in_blocks->block_rows > 0 ? in_blocks->block_rows : golden_block_rows(c->params);
      return job;
    }
    Job job{&gc->params, dtype, &inputs.q, &inputs.k};
    job.pass = pass;
    if (pass == Pass::backward) {
      job.g_q = &upstream.g_q;
      job.g_k = &upstream.g_k;
    }
    return job;
  }
  // A stream's case in one call, as a case without the stream (forward).
  Job one_call_job() const { return Job{one_call ? &*one_call : &gc->params, dtype, &inputs.q, &inputs.k}; }
};

// A packed batch's sequences, each a case of its own with its rows of the inputs.
void add_parts(Prepared& p) {
  const Case& c = p.gc->params;
  p.part_cases = std::make_shared<std::vector<GridCase>>();
  p.parts = std::make_shared<std::vector<Prepared>>();
  for (long i = 0; i < c.packed->count(); ++i) {
    const Case one = c.sequence_case(i);
    p.part_cases->push_back({p.gc->id + fmt::format("/seq{}", i), one, p.gc->seed});
  }
  for (long i = 0; i < c.packed->count(); ++i) {
    Prepared part;
    part.gc = &(*p.part_cases)[static_cast<std::size_t>(i)];
    part.dtype = p.dtype;
    part.inputs = Inputs{sequence_queries(c, p.inputs.q, i), sequence_keys(c, p.inputs.k, i)};
    part.pass = p.pass;
    if (p.pass == Pass::backward)
      part.upstream = Upstream{sequence_queries(c, p.upstream.g_q, i), sequence_keys(c, p.upstream.g_k, i)};
    p.parts->push_back(std::move(part));
  }
}

// The inputs alone: all a candidate needs to start on the case, given its inputs,
// which took `drawn_s` to draw.
Prepared prepare_inputs(const GridCase& gc, DType dtype, Pass pass, Inputs inputs, double drawn_s) {
  const auto t0 = std::chrono::steady_clock::now();
  Prepared p;
  p.gc = &gc;
  p.dtype = dtype;
  p.inputs = std::move(inputs);
  p.pass = pass;
  // The backward pass of a stream's case is judged as the whole case in one call.
  if (pass == Pass::backward) {
    p.upstream = generate_upstream(gc.params, gc.seed, dtype);
  } else if (gc.params.stream) {
    p.calls = stream_calls(gc.params, p.inputs.q, p.inputs.k);
    p.one_call = gc.params;
    p.one_call->stream.reset();
  }
  if (gc.params.packed) add_parts(p);
  p.inputs_s = drawn_s + seconds_since(t0);
  return p;
}

// `drawn`: the same case's inputs, already drawn for its other pass.
Prepared prepare_inputs(const GridCase& gc, DType dtype, Pass pass, const Inputs* drawn = nullptr) {
  const auto t0 = std::chrono::steady_clock::now();
  // Both arms prvalues: the fresh draw is moved, only `drawn` is copied.
  Inputs inputs = drawn ? Inputs(*drawn) : generate_inputs(gc.params, gc.seed, dtype);
  return prepare_inputs(gc, dtype, pass, std::move(inputs), seconds_since(t0));
}

// The golden outputs (or gradients) and tables, to judge the candidate by.
void add_golden(Prepared& p, std::size_t logit_rows) {
  const auto t0 = std::chrono::steady_clock::now();
  if (p.parts) {
    // Judged sequence by sequence: the parts hold the golden outputs.
    for (Prepared& part : *p.parts) add_golden(part, logit_rows);
    p.golden_s += seconds_since(t0);
    return;
  }
  if (p.pass == Pass::backward) {
    GoldenGradients g = golden_gradients_fast(p.gc->params, p.upstream.g_q, p.upstream.g_k);
    p.golden.q_out = std::move(g.dq);
    p.golden.k_out = std::move(g.dk);
  } else {
    GoldenOptions options = judging_golden_options(p.gc->params, logit_rows);
    if (p.calls) {
      // A step's queries see the keys cached so far: the rest of their logits go uncomputed.
      options.rows = stream_logit_rows(p.gc->params, options.max_logit_rows);
      for (long row : options.rows) options.visible_keys.push_back(visible_keys(p.gc->params, row));
    }
    p.golden = golden_fast(p.gc->params, p.inputs.q, p.inputs.k, options);
  }
  p.tables = shared_tables(p.gc->params);
  p.golden_s += seconds_since(t0);
}

Prepared prepare(const GridCase& gc, DType dtype, Pass pass, std::size_t logit_rows) {
  Prepared p = prepare_inputs(gc, dtype, pass);
  add_golden(p, logit_rows);
  return p;
}

// Runs the case on a fresh instance of the candidate (the history-dependence
// hypothesis); a candidate that cannot make one skips that hypothesis.
FreshRun fresh_run_of(const Candidate& candidate, const Prepared& p) {
  if (!candidate.fresh()) return {};
  return [&candidate, &p] {
    const auto fresh = candidate.fresh();
    if (p.calls) return run_stream(*fresh, p.gc->params, p.dtype, *p.calls);
    return attempt(*fresh, p.whole_job());
  };
}

// A stream is judged as the whole case with causal logits and one curve bin per
// position, from which each step's verdict is read.
CompareOptions compare_options(const Prepared& p) {
  CompareOptions options;
  if (p.yardstick) options.yardstick = &*p.yardstick;
  options.pass = p.pass;
  if (p.calls) {
    const Case& c = p.gc->params;
    options.curve_bins = stream_curve_bins(c);
    options.visible_keys = [&c](long m) { return visible_keys(c, m); };
  }
  return options;
}

Record judge(const Candidate& candidate, const Prepared& p, const Attempt& attempt,
             double candidate_s, const Tolerance& tol, const DiagnosisOptions& diagnosis,
             const Attempt* one_pass = nullptr);

// A packed batch: its shapes as a whole, then every sequence judged (and diagnosed) as
// a case of its own on its rows; positions continuing across sequences are named here,
// where the sequence boundaries are known.
Record judge_packed(const Candidate& candidate, const Prepared& p, const Attempt& attempt, double candidate_s,
                    const Tolerance& tol, const DiagnosisOptions& diagnosis) {
  const Case& c = p.gc->params;
  Record r = blank_record(candidate.name(), *p.gc, p.dtype, p.pass);
  r.timing.inputs_s = p.inputs_s;
  r.timing.golden_s = p.golden_s;
  r.timing.candidate_s = candidate_s;
  const auto t0 = std::chrono::steady_clock::now();
  const auto* output = std::get_if<CandidateOutput>(&attempt);
  if (!output) {
    record_failure(c, std::get<CandidateFailure>(attempt), r);
  } else if (check_output_shapes(c, p.dtype, *output, r, p.pass)) {
    std::vector<Record> parts;
    for (long i = 0; i < c.packed->count(); ++i) {
      const Prepared& part = (*p.parts)[static_cast<std::size_t>(i)];
      const CandidateOutput out = sequence_output(c, *output, i);
      parts.push_back(judge(candidate, part, out, candidate_s, tol, diagnosis));
      if (p.pass == Pass::forward && fails_gate(parts.back())) {
        // Seen alone, such a sequence looks like another frame: judged again without
        // that diagnosis, so that the message tells the bug.
        if (auto d = positions_continue(c, p.dtype, tol, i, part.inputs.q, part.inputs.k, out)) {
          DiagnosisOptions plain = diagnosis;
          plain.enabled = false;
          parts.back() = judge(candidate, part, out, candidate_s, tol, plain);
          attach_diagnosis(parts.back(), std::move(*d), diagnosis);
        }
      }
    }
    merge_sequence_records(c, parts, r);
  }
  r.timing.compare_s = seconds_since(t0);
  return r;
}

// A long case's outputs, left in the candidate's files, judged block by block.
Record judge_rows(const Candidate& candidate, const Prepared& p, const Attempt& attempt, double candidate_s,
                  const Tolerance& tol) {
  if (const auto* failure = std::get_if<CandidateFailure>(&attempt)) {
    Record r = blank_record(candidate.name(), *p.gc, p.dtype, p.pass);
    record_failure(p.gc->params, *failure, r);
    r.timing.candidate_s = candidate_s;
    return r;
  }
  Record r = judge_output_in_blocks(candidate.name(), std::get<CandidateOutput>(attempt), *p.gc, p.dtype, tol,
                                    *p.in_blocks, p.yardstick ? &*p.yardstick : nullptr);
  r.timing.candidate_s = candidate_s;
  return r;
}

Record judge(const Candidate& candidate, const Prepared& p, const Attempt& attempt,
             double candidate_s, const Tolerance& tol, const DiagnosisOptions& diagnosis,
             const Attempt* one_pass) {
  if (p.in_blocks) return judge_rows(candidate, p, attempt, candidate_s, tol);
  if (p.parts) return judge_packed(candidate, p, attempt, candidate_s, tol, diagnosis);
  Record r = blank_record(candidate.name(), *p.gc, p.dtype, p.pass);
  r.timing.inputs_s = p.inputs_s;
  r.timing.golden_s = p.golden_s;
  r.timing.candidate_s = candidate_s;
  const auto t0 = std::chrono::steady_clock::now();
  if (const auto* failure = std::get_if<CandidateFailure>(&attempt)) {
    record_failure(p.gc->params, *failure, r);
  } else {
    const auto& output = std::get<CandidateOutput>(attempt);
    compare_outputs(p.gc->params, p.dtype, p.golden, *p.tables, output, tol, r, compare_options(p));
    if (p.calls && r.outcome != Outcome::dim_mismatch) {
      read_steps(p.gc->params, r, CompareOptions{}.curve_bins);
      if (const auto* own = one_pass ? std::get_if<CandidateOutput>(one_pass) : nullptr)
        compare_with_one_pass(p.gc->params, output, *own, *r.stream);
    }
  }
  r.timing.compare_s = seconds_since(t0);
  if (p.pass == Pass::backward) {
    const BackwardDiagnosisInput input{&p.gc->params, p.dtype, &p.upstream.g_q, &p.upstream.g_k,
                                       p.tables.get(), &tol, std::get_if<CandidateOutput>(&attempt)};
    diagnose_backward_record(input, r, diagnosis);
    return r;
  }
  const DiagnosisInput input{&p.gc->params, p.dtype, &p.inputs.q, &p.inputs.k, &p.golden,
                             p.tables.get(), &tol, std::get_if<CandidateOutput>(&attempt),
                             fresh_run_of(candidate, p),
                             candidate.execution() == Execution::serial};
  diagnose_record(input, r, diagnosis);
  return r;
}

// A stream runs on a fresh instance of its own (state carried between its calls is
// the point), then the whole case once more on another, for consistency.
Record run_prepared(Candidate& candidate, const Prepared& p, const Tolerance& tol,
                    const DiagnosisOptions& diagnosis) {
  const auto t0 = std::chrono::steady_clock::now();
  if (!p.calls) {
    const Attempt a = attempt(candidate, p.whole_job());
    return judge(candidate, p, a, seconds_since(t0), tol, diagnosis);
  }
  const auto fresh = candidate.fresh();
  const Attempt a = run_stream(fresh ? *fresh : candidate, p.gc->params, p.dtype, *p.calls);
  const double candidate_s = seconds_since(t0);
  std::optional<Attempt> one_pass;
  if (const auto again = candidate.fresh()) one_pass = attempt(*again, p.one_call_job());
  return judge(candidate, p, a, candidate_s, tol, diagnosis, one_pass ? &*one_pass : nullptr);
}

std::unique_ptr<Candidate> yardstick_candidate(const CandidateFactory& yardstick) {
  if (!yardstick) throw std::invalid_argument("the relative tolerance rule needs a yardstick candidate");
  return yardstick();
}

// The relative rule's yardstick of a long case, judged in blocks too; none under
// another rule.
std::optional<Record> yardstick_in_blocks(const GridCase& gc, DType dtype, const Tolerance& tol,
                                          const CandidateFactory& yardstick, const BlockOptions& blocks) {
  if (tol.rule != ToleranceRule::relative) return std::nullopt;
  auto reference = yardstick_candidate(yardstick);
  Candidate* const one[] = {reference.get()};
  BlockOptions undiagnosed = blocks;
  undiagnosed.diagnosis.enabled = false;
  return judge_in_blocks(one, gc, dtype, tol, undiagnosed).front();
}

void add_yardstick(Prepared& p, const Tolerance& tol, const CandidateFactory& yardstick) {
  if (tol.rule != ToleranceRule::relative) return;
  auto reference = yardstick_candidate(yardstick);
  DiagnosisOptions no_diagnosis;
  no_diagnosis.enabled = false;
  p.yardstick = run_prepared(*reference, p, tol, no_diagnosis);
}

// A packed batch's sequences are judged each by its own yardstick record.
void add_yardsticks(Prepared& p, const Tolerance& tol, const CandidateFactory& yardstick) {
  if (!p.parts) return add_yardstick(p, tol, yardstick);
  for (Prepared& part : *p.parts) add_yardstick(part, tol, yardstick);
}

struct Unit {
  const GridCase* gc;
  DType dtype;
  std::size_t order;
  Pass pass = Pass::forward;
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
  // Whether the unit is a long case judged in blocks (blocks.hpp) where it can be.
  bool in_blocks(const Unit& u) const;
  void judge_unit_in_blocks(const Unit& u, const std::vector<Candidate*>& candidates, detail::Activity& activity);
  void batched_pass(const std::vector<Unit>& units, Candidate& candidate);
  void set_total(std::size_t total) { progress_state_.total = total; }
  // Reports the work in flight (a tick); the finished records report themselves.
  void tick();
  // Asks each candidate once whether it has the backward pass, when one is run.
  void find_backward(const std::vector<std::unique_ptr<Candidate>>& candidates);

 private:
  Tolerance tolerance(DType t) const { return resolve_tolerance(t, grid_.tolerance, options_.tolerance); }
  // A backward unit exists only for candidates with the backward pass: the others get
  // no record for it, which is not a failure.
  bool pending(const Candidate& c, const Unit& u) const {
    if (u.pass == Pass::backward && !backward_.count(&c)) return false;
    return !store_.done(blank_record(c.name(), *u.gc, u.dtype, u.pass).key());
  }
  const std::vector<Pass>& passes() const { return options_.passes.empty() ? grid_.passes : options_.passes; }
  Prepared prepare_unit(const Unit& u, const Inputs* drawn = nullptr) const {
    Prepared p = prepare_inputs(*u.gc, u.dtype, u.pass, drawn);
    complete_unit(p);
    return p;
  }
  void complete_unit(Prepared& p) const {
    if (p.in_blocks) return add_yardstick_in_blocks(p);
    add_golden(p, options_.max_logit_rows);
    add_yardsticks(p, tolerance(p.dtype), options_.yardstick);
  }
  struct Batch;
  BlockOptions block_options() const {
    return {options_.block_rows, options_.max_logit_rows, {}, options_.diagnosis};
  }
  void add_yardstick_in_blocks(Prepared& p) const {
    p.yardstick = yardstick_in_blocks(*p.gc, p.dtype, tolerance(p.dtype), options_.yardstick, *p.in_blocks);
  }
  // The inputs of a batch's units; a long case that `candidate` takes as input rows
  // gets none (Prepared::in_blocks).
  Batch inputs_of(const std::vector<Unit>& members, const Candidate& candidate) const;
  std::vector<std::vector<Unit>> batches_of(const std::vector<Unit>& units, std::size_t size) const;
  void judge_batch(const Candidate& candidate, Batch& batch);
  // Its golden outputs and yardsticks, once.
  void complete_batch(Batch& batch) const;
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
  std::set<const Candidate*> backward_;  // the candidates that have the backward pass
  detail::ActivityBoard board_;           // the work in flight, for ticks
};

std::string unit_label(const Unit& u) {
  return fmt::format("{} {}{}", u.gc->id, dtype_name(u.dtype), u.pass == Pass::backward ? " backward" : "");
}

void Sweeper::tick() {
  std::vector<std::string> running = board_.lines();
  if (running.empty() || !progress_) return;
  std::lock_guard lock(progress_mutex_);
  progress_state_.elapsed_s = seconds_since(start_);
  progress_state_.running = std::move(running);
  progress_(progress_state_);
  progress_state_.running.clear();
}

void Sweeper::find_backward(const std::vector<std::unique_ptr<Candidate>>& candidates) {
  if (std::find(passes().begin(), passes().end(), Pass::backward) == passes().end()) return;
  for (const auto& c : candidates) {
    if (c->has_backward()) backward_.insert(c.get());
  }
}

std::vector<Unit> Sweeper::units() const {
  const std::vector<DType>& dtypes = options_.dtypes.empty() ? grid_.dtypes : options_.dtypes;
  std::vector<Unit> units;
  for (const GridCase& gc : grid_.cases) {
    for (DType t : dtypes) {
      for (Pass pass : passes()) units.push_back({&gc, t, units.size(), pass});
    }
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
  if (fails_gate(r)) ++progress_state_.failures;
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
  // The passes of one (case, dtype) are one piece of work, each candidate's forward
  // pass right before its backward pass on the same thread: a built-in keeps its tables
  // from one for the other (candidates::TableMemo).
  std::vector<std::vector<Unit>> work;
  for (const Unit& u : units) {
    if (work.empty() || work.back().front().gc != u.gc || work.back().front().dtype != u.dtype) work.emplace_back();
    work.back().push_back(u);
  }
  parallel_for(work.size(), [&](std::size_t i) {
    detail::Activity activity(board_, unit_label(work[i][0]));
    for (const Unit& u : work[i]) {
      if (in_blocks(u)) judge_unit_in_blocks(u, candidates, activity);
    }
    const bool whole = std::any_of(work[i].begin(), work[i].end(), [&](const Unit& u) {
      return std::any_of(candidates.begin(), candidates.end(), [&](Candidate* c) { return pending(*c, u); });
    });
    if (!whole) return;
    activity.stage("inputs and golden outputs");
    std::vector<Prepared> prepared;
    for (const Unit& u : work[i]) prepared.push_back(prepare_unit(u, prepared.empty() ? nullptr : &prepared[0].inputs));
    for (Candidate* c : candidates) {
      activity.stage(c->name());
      for (std::size_t k = 0; k < work[i].size(); ++k) {
        if (pending(*c, work[i][k]))
          finished(run_prepared(*c, prepared[k], tolerance(work[i][k].dtype), options_.diagnosis));
      }
    }
  }, worker_count(work.size()));
}

bool Sweeper::in_blocks(const Unit& u) const {
  return judged_in_blocks(u.gc->params, u.pass, options_.max_logit_rows, options_.block_above_bytes);
}

// The candidates that rotate rows alone, judged on a long case in one pass over its
// blocks; the others are left to the whole case.
void Sweeper::judge_unit_in_blocks(const Unit& u, const std::vector<Candidate*>& candidates,
                                   detail::Activity& activity) {
  std::vector<Candidate*> by_rows;
  for (Candidate* c : candidates) {
    if (c->rotates_rows() && pending(*c, u)) by_rows.push_back(c);
  }
  if (by_rows.empty()) return;
  BlockOptions blocks = block_options();
  blocks.stage = [&activity](const std::string& stage) { activity.stage(stage); };
  const Tolerance tol = tolerance(u.dtype);
  const std::optional<Record> yardstick = yardstick_in_blocks(*u.gc, u.dtype, tol, options_.yardstick, blocks);
  for (Record& r : judge_in_blocks(by_rows, *u.gc, u.dtype, tol, blocks, yardstick ? &*yardstick : nullptr))
    finished(std::move(r));
}

void Sweeper::serial_pass(const std::vector<Unit>& units, Candidate& candidate) {
  for (const Unit& u : units) {
    if (!pending(candidate, u)) continue;
    detail::Activity activity(board_, unit_label(u));
    activity.stage("inputs and golden outputs");
    const Prepared p = prepare_unit(u);
    activity.stage(candidate.name());
    finished(run_prepared(candidate, p, tolerance(u.dtype), options_.diagnosis));
  }
}

// Input values per batch of an external candidate: two batches are in flight (one
// running, one being judged), each holding inputs, golden and candidate outputs.
constexpr double kBatchValues = double(1 << 24);

// A backward unit also holds the upstream gradients: twice the input values.
double input_values(const Unit& u) {
  const Case& c = u.gc->params;
  return (u.pass == Pass::backward ? 2.0 : 1.0) * double(c.batch * c.heads) * double(c.seq_len + c.key_rows()) *
         c.head_dim;
}

double input_values(const std::vector<Unit>& units) {
  double values = 0;
  for (const Unit& u : units) values += input_values(u);
  return values;
}

std::vector<std::vector<Unit>> Sweeper::batches_of(const std::vector<Unit>& units,
                                                   std::size_t size) const {
  std::vector<std::vector<Unit>> batches;
  double values = 0;
  for (const Unit& u : units) {
    const double unit_values = input_values(u);
    if (batches.empty() || batches.back().size() >= size || values + unit_values > kBatchValues) {
      batches.emplace_back();
      values = 0;
    }
    batches.back().push_back(u);
    values += unit_values;
  }
  return batches;
}

struct Sweeper::Batch {
  std::vector<Prepared> prepared;
  std::vector<Attempt> attempts;
  std::vector<std::optional<Attempt>> one_pass;  // streams: the whole case in one call
  double per_case_s = 0;
  bool completed = false;  // golden outputs and yardsticks added (complete_batch)

  // One job per case; a stream as one job when the candidate runs it whole, else its
  // calls in order (one round trip); then a stream's case once more in one call.
  std::vector<Job> jobs(bool whole_streams) const {
    std::vector<Job> out;
    for (const Prepared& p : prepared) {
      if (!p.calls || whole_streams) out.push_back(p.whole_job());
      else for (const Job& j : stream_jobs(*p.calls, p.dtype)) out.push_back(j);
      if (p.calls) out.push_back(p.one_call_job());
    }
    return out;
  }
  // The attempts of jobs(whole_streams) back to their cases.
  void take(std::vector<Attempt> all, bool whole_streams) {
    attempts.clear();
    one_pass.assign(prepared.size(), std::nullopt);
    std::size_t at = 0;
    const Attempt missing = CandidateFailure{FailureKind::crash, "candidate returned no result for this case"};
    for (std::size_t i = 0; i < prepared.size(); ++i) {
      const Prepared& p = prepared[i];
      if (!p.calls || whole_streams) {
        // Not `cond ? std::move(all[at]) : missing`: mixing a const lvalue in copies
        // the candidate's whole output.
        if (at < all.size()) attempts.push_back(std::move(all[at]));
        else attempts.push_back(missing);
        ++at;
        if (p.calls && at < all.size()) one_pass[i] = std::move(all[at]);
        if (p.calls) ++at;
        continue;
      }
      const std::size_t calls = p.calls->cases.size();
      const std::size_t begin = std::min(at, all.size()), end = std::min(at + calls, all.size());
      attempts.push_back(join_stream(p.gc->params, p.dtype, *p.calls,
                                     std::span<const Attempt>(all.data() + begin, end - begin)));
      if (at + calls < all.size()) one_pass[i] = std::move(all[at + calls]);
      at += calls + 1;
    }
  }
};

void Sweeper::judge_batch(const Candidate& candidate, Batch& batch) {
  parallel_for(batch.prepared.size(), [&](std::size_t i) {
    Prepared& p = batch.prepared[i];
    // A long case is judged block by block for a while: its progress shows in ticks.
    std::optional<detail::Activity> activity;
    if (p.in_blocks) {
      activity.emplace(board_, unit_label(Unit{p.gc, p.dtype, 0, p.pass}) + ": " + candidate.name());
      p.in_blocks->stage = [&activity](const std::string& stage) { activity->stage(stage); };
    }
    const Attempt missing = CandidateFailure{FailureKind::crash, "candidate returned no result for this case"};
    const Attempt& a = i < batch.attempts.size() ? batch.attempts[i] : missing;
    const auto own = std::visit([](const auto& x) { return x.seconds; }, a);
    const Attempt* one_pass = i < batch.one_pass.size() && batch.one_pass[i] ? &*batch.one_pass[i] : nullptr;
    finished(judge(candidate, p, a, own.value_or(batch.per_case_s), tolerance(p.dtype), options_.diagnosis,
                   one_pass));
  }, worker_count(batch.prepared.size()));
  batch = {};  // its memory goes before the next batch's arrives
}

void Sweeper::complete_batch(Batch& batch) const {
  if (batch.completed) return;
  parallel_for(batch.prepared.size(), [&](std::size_t i) { complete_unit(batch.prepared[i]); },
               worker_count(batch.prepared.size()));
  batch.completed = true;
}

// Runs side() on another thread while main() runs on this one; rethrows the first
// exception of either after both have finished.
template <class Main, class Side>
void alongside(Main main, Side side) {
  std::exception_ptr side_error;
  std::thread thread([&] {
    try {
      side();
    } catch (...) {
      side_error = std::current_exception();
    }
  });
  try {
    main();
  } catch (...) {
    thread.join();
    throw;
  }
  thread.join();
  if (side_error) std::rethrow_exception(side_error);
}

// A batch's inputs, each case's drawn once for all its dtypes (units of a case are
// adjacent).
Sweeper::Batch Sweeper::inputs_of(const std::vector<Unit>& members, const Candidate& candidate) const {
  Batch batch;
  batch.prepared.resize(members.size());
  std::vector<std::pair<std::size_t, std::size_t>> runs;  // [first, last) of one case's units
  for (std::size_t i = 0; i < members.size(); ++i) {
    if (candidate.takes_input_rows() && in_blocks(members[i])) {
      Prepared& p = batch.prepared[i];
      p.gc = members[i].gc;
      p.dtype = members[i].dtype;
      p.pass = members[i].pass;
      p.in_blocks = block_options();
    } else if (!runs.empty() && runs.back().second == i && members[runs.back().first].gc == members[i].gc) {
      ++runs.back().second;
    } else {
      runs.emplace_back(i, i + 1);
    }
  }
  parallel_for(runs.size(), [&](std::size_t r) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto [first, last] = runs[r];
    const GridCase& gc = *members[first].gc;
    std::vector<DType> dtypes;
    for (std::size_t i = first; i < last; ++i) dtypes.push_back(members[i].dtype);
    std::vector<Inputs> drawn = generate_inputs(gc.params, gc.seed, dtypes);
    const double each_s = seconds_since(t0) / static_cast<double>(dtypes.size());
    for (std::size_t i = first; i < last; ++i)
      batch.prepared[i] = prepare_inputs(gc, members[i].dtype, members[i].pass, std::move(drawn[i - first]), each_s);
  }, worker_count(runs.size()));
  return batch;
}

// A pipeline, so that neither side waits for the other: while the candidate's
// process runs batch k, the harness judges batch k - 1, computes batch k's golden
// outputs, draws batch k + 1's inputs and lets the candidate stage them (write them).
void Sweeper::batched_pass(const std::vector<Unit>& all, Candidate& candidate) {
  std::vector<Unit> units;
  for (const Unit& u : all) {
    if (pending(candidate, u)) units.push_back(u);
  }
  auto batches = batches_of(units, std::max<std::size_t>(1, candidate.batch_size()));
  if (batches.empty()) return;
  // The largest batches first: the last one is judged with the candidate done, so it
  // had better be small. Cases keep the grid's order within a batch.
  std::stable_sort(batches.begin(), batches.end(), [](const std::vector<Unit>& a, const std::vector<Unit>& b) {
    return input_values(a) > input_values(b);
  });
  const bool streams =
      std::any_of(units.begin(), units.end(), [](const Unit& u) { return u.gc->params.stream.has_value(); });
  // Whether the candidate runs streams whole shapes the first batch's jobs, and asking
  // means waiting while its process starts (seconds, to import a framework): batches
  // are prepared meanwhile, the first always, more while the wait lasts, up to one
  // batch's worth of input values.
  std::deque<Batch> ready;
  std::atomic<bool> waiting{streams};
  alongside(
      [&] {
        if (streams) candidate.expect_streams();
        waiting = false;
      },
      [&] {
        ready.push_back(inputs_of(batches[0], candidate));
        complete_batch(ready.back());
        double values = input_values(batches[0]);
        for (std::size_t k = 1; k < batches.size() && waiting; ++k) {
          values += input_values(batches[k]);
          if (values > kBatchValues) break;
          try {
            Batch b = inputs_of(batches[k], candidate);
            complete_batch(b);
            ready.push_back(std::move(b));
          } catch (...) {
            break;  // prepared again in its turn, where its error stops the sweep as before
          }
        }
      });
  std::optional<Batch> previous;
  Batch current = std::move(ready.front());
  ready.pop_front();
  for (std::size_t k = 0; k < batches.size(); ++k) {
    const bool whole_streams = candidate.runs_whole_streams();
    const std::vector<Job> jobs = current.jobs(whole_streams);
    Batch next;
    detail::Activity activity(board_, fmt::format("batch {} of {} ({} cases)", k + 1, batches.size(),
                                                  batches[k].size()));
    activity.stage(candidate.name() + " running");
    alongside(
        [&] {
          const auto t0 = std::chrono::steady_clock::now();
          current.take(candidate.run_batch(jobs), whole_streams);
          current.per_case_s = seconds_since(t0) / static_cast<double>(current.prepared.size());
        },
        [&] {
          // The next batch first: a serving candidate done with this one starts on it
          // at once, while the batch before is judged. Its failure stops the sweep, but
          // only after that judging: results already computed are kept.
          std::exception_ptr failed;
          try {
            if (k + 1 < batches.size()) {
              if (ready.empty()) {
                next = inputs_of(batches[k + 1], candidate);
              } else {
                next = std::move(ready.front());
                ready.pop_front();
              }
              candidate.stage_batch(next.jobs(candidate.runs_whole_streams()));
            }
          } catch (...) {
            failed = std::current_exception();
          }
          if (previous) judge_batch(candidate, *previous);
          complete_batch(current);
          if (failed) std::rethrow_exception(failed);
        });
    previous = std::move(current);
    current = std::move(next);
  }
  judge_batch(candidate, *previous);
}

// Calls `tick` every `interval_s` on a thread of its own while it lives.
class Ticker {
 public:
  Ticker(double interval_s, std::function<void()> tick) {
    if (!tick || !(interval_s > 0)) return;
    thread_ = std::thread([this, interval_s, tick = std::move(tick)] {
      std::unique_lock lock(mutex_);
      while (!stop_) {
        if (wake_.wait_for(lock, std::chrono::duration<double>(interval_s), [this] { return stop_; })) break;
        lock.unlock();
        tick();
        lock.lock();
      }
    });
  }
  ~Ticker() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  Ticker(const Ticker&) = delete;
  Ticker& operator=(const Ticker&) = delete;

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace

void run_sweep(const Grid& grid, std::vector<std::unique_ptr<Candidate>>& candidates,
               const SweepOptions& options, ResultsStore& store, const ProgressCallback& progress) {
  Sweeper sweeper(grid, options, store, progress);
  sweeper.find_backward(candidates);
  const std::vector<Unit> units = sweeper.units();
  sweeper.set_total(sweeper.count_pending(units, candidates));
  std::vector<Candidate*> shared;
  for (auto& c : candidates) {
    if (c->execution() == Execution::parallel) shared.push_back(c.get());
  }
  Ticker ticker(options.progress_tick_s, progress ? [&sweeper] { sweeper.tick(); } : std::function<void()>());
  if (!shared.empty()) sweeper.parallel_pass(units, shared);
  for (auto& c : candidates) {
    if (c->execution() == Execution::serial) sweeper.serial_pass(units, *c);
    else if (c->execution() == Execution::batched) sweeper.batched_pass(units, *c);
  }
}

Record evaluate_one(Candidate& candidate, const GridCase& gc, DType dtype, const Tolerance& tolerance,
                    std::size_t max_logit_rows, const DiagnosisOptions& diagnosis,
                    const CandidateFactory& yardstick) {
  Prepared p = prepare(gc, dtype, Pass::forward, max_logit_rows);
  add_yardsticks(p, tolerance, yardstick);
  return run_prepared(candidate, p, tolerance, diagnosis);
}

Record evaluate_one(Candidate& candidate, const GridCase& gc, DType dtype, Pass pass,
                    const Tolerance& tolerance, const DiagnosisOptions& diagnosis) {
  const Prepared p = prepare(gc, dtype, pass, kSweepLogitRows);
  return run_prepared(candidate, p, tolerance, diagnosis);
}

}  // namespace xposcheck
