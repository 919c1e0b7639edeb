// The batched pass: an external candidate's process runs batches of cases while the
// harness writes the next batch and judges the one before.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <exception>
#include <future>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "elapsed.hpp"
#include "parallel_for.hpp"
#include "sweeper.hpp"
#include "xposcheck/harness/stream.hpp"

namespace xposcheck::detail {
namespace {

// Input values per batch of an external candidate: two batches are in flight (one
// running, one being judged), each holding inputs, golden and candidate outputs, and
// a third is being drawn and staged.
constexpr double kBatchValues = double(1 << 24);
// While the first process starts, batches are prepared ahead up to what the pipeline
// holds anyway: three batches' input values.
constexpr double kPreparedAheadValues = 3 * kBatchValues;

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

}  // namespace

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

namespace {

// Runs side() on another thread while main() runs on this one, both within this
// thread's ThreadBudget; rethrows the first exception of either after both have
// finished.
template <class Main, class Side>
void alongside(Main main, Side side) {
  std::exception_ptr side_error;
  std::thread thread([&, budget = threads_here()] {
    const ThreadBudget inherited(budget);
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

}  // namespace

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
  // Warming the candidate up means waiting while its process starts (seconds, to import
  // a framework) and says whether it runs streams whole, which shapes the first batch's
  // jobs. Meanwhile the first batch's inputs are drawn; it is handed over as soon as
  // both are ready, and the process starts on it while the harness prepares the next
  // batches (the largest come first, so a budget of one batch would stop at the
  // first). The first batch's golden outputs are made while it runs, in the loop.
  Batch first;
  std::deque<Batch> ready;
  std::promise<bool> first_drawn;  // false: drawing failed, its error ends the sweep
  std::future<bool> first_ready = first_drawn.get_future();
  std::atomic<bool> handed{false};
  alongside(
      [&] {
        candidate.warm_up();
        if (first_ready.get()) candidate.stage_batch(first.jobs(candidate.runs_whole_streams()));
        handed = true;
      },
      [&] {
        try {
          first = inputs_of(batches[0], candidate);
        } catch (...) {
          first_drawn.set_value(false);
          throw;
        }
        first_drawn.set_value(true);
        double values = input_values(batches[0]);
        for (std::size_t k = 1; k < batches.size() && !handed; ++k) {
          values += input_values(batches[k]);
          if (values > kPreparedAheadValues) break;
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
  Batch current = std::move(first);
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
          // The next batch's golden outputs too, while the candidate still runs: the
          // batch before is judged and gone, so memory stays where it was, and the
          // harness does less while torch needs both cores later.
          if (!failed && k + 1 < batches.size()) complete_batch(next);
          if (failed) std::rethrow_exception(failed);
        });
    previous = std::move(current);
    current = std::move(next);
  }
  judge_batch(candidate, *previous);
}

}  // namespace xposcheck::detail
