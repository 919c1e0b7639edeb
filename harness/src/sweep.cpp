#include "xposcheck/harness/sweep.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "elapsed.hpp"
#include "parallel_for.hpp"
#include "sweeper.hpp"
#include "xposcheck/harness/gate.hpp"
#include "xposcheck/harness/shard.hpp"

namespace xposcheck {
namespace detail {

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

}  // namespace detail

namespace {

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

using detail::add_yardsticks;
using detail::prepare;
using detail::Prepared;
using detail::run_prepared;
using detail::Sweeper;
using detail::Unit;

void run_sweep(const Grid& grid, std::vector<std::unique_ptr<Candidate>>& candidates,
               const SweepOptions& options, ResultsStore& store, const ProgressCallback& progress) {
  std::optional<ThreadBudget> jobs;
  if (options.jobs) jobs.emplace(options.jobs);
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
