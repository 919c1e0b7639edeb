#pragma once
// The sweep's driver: the units of a grid (case, dtype, pass), and the passes that run
// them through built-in, serial and batched (external) candidates.
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "activity.hpp"
#include "blank_record.hpp"
#include "prepared.hpp"
#include "xposcheck/reference/threads.hpp"
#include "xposcheck/harness/sweep.hpp"

namespace xposcheck::detail {

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
  // Threads for `work` units: this thread's budget (--jobs, else every core); never
  // more than the units.
  static unsigned worker_count(std::size_t work) {
    return static_cast<unsigned>(std::min<std::size_t>(threads_here(), std::max<std::size_t>(1, work)));
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

std::string unit_label(const Unit& u);

}  // namespace xposcheck::detail
