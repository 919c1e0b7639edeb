#pragma once
// Runs every (candidate, case, dtype) of a grid, in parallel, golden outputs computed
// once per (case, dtype) and shared by the candidates.
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "xposcheck/cases/grid.hpp"
#include "xposcheck/harness/blocks.hpp"
#include "xposcheck/harness/candidate.hpp"
#include "xposcheck/harness/diagnosis.hpp"
#include "xposcheck/harness/results.hpp"
#include "xposcheck/harness/shard.hpp"
#include "xposcheck/harness/tolerance.hpp"

namespace xposcheck {

// At most this many query rows per case have their logits compared by default (the
// sweep command's --logit-rows): each candidate pays for its own logits, every case.
inline constexpr std::size_t kSweepLogitRows = 128;

using CandidateFactory = std::function<std::unique_ptr<Candidate>()>;

struct SweepOptions {
  std::vector<DType> dtypes;            // empty: the grid's dtypes
  // Forward (outputs) and/or backward (gradients, for the candidates that have a
  // backward pass); empty: the grid's passes.
  std::vector<Pass> passes;
  unsigned jobs = 0;                    // 0: every core
  ToleranceOverrides tolerance;         // command-line overrides, applied over the grid's
  // At most this many query rows have their logits compared (0: as many as the
  // per-case budget of about 2^24 multiply-adds allows, and at least 8).
  std::size_t max_logit_rows = kSweepLogitRows;
  DiagnosisOptions diagnosis;           // failing records get a diagnosis (diagnosis.hpp)
  std::optional<Shard> shard;           // run only this shard's units (shard.hpp)
  // The candidate whose errors the relative rule scales (docs/tolerances.md); the
  // sweep command names fp32-angles. Required when a dtype's rule is relative.
  CandidateFactory yardstick;
  // Between progress reports of the work in flight (Progress::running), so that a long
  // case shows what it is doing while no record finishes; 0: none.
  double progress_tick_s = 1.0;
  // A forward case whose whole tensors would take more than this many bytes
  // (estimated_case_bytes) is judged in blocks of rows by the candidates that rotate
  // rows alone (blocks.hpp, docs/long-context.md), in block_rows rows (0: about 4 MiB
  // of each tensor); the other candidates get it whole.
  double block_above_bytes = kBlockAboveBytes;
  long block_rows = 0;
};

struct Progress {
  std::size_t done = 0, total = 0, failures = 0;
  double elapsed_s = 0;
  const Record* last = nullptr;  // the record just finished; null in a tick
  // In a tick (every progress_tick_s): the work in flight, oldest first, each as
  // "CASE DTYPE: STAGE, N s" (the stage: inputs and golden outputs, a candidate's name,
  // a batch's candidate run or judging).
  std::vector<std::string> running;
};

using ProgressCallback = std::function<void(const Progress&)>;

// Records go to the store as they finish (records the store already has are
// skipped); the progress callback is called from one thread at a time.
void run_sweep(const Grid& grid, std::vector<std::unique_ptr<Candidate>>& candidates,
               const SweepOptions& options, ResultsStore& store,
               const ProgressCallback& progress = {});

// Throws LimitError (limits.hpp) naming the case, the candidate and the estimate when
// a unit of the sweep would need more memory than the machine allows: the whole case
// for a candidate that gets it whole, a few blocks for one that rotates rows.
void check_sweep_memory(const Grid& grid, const std::vector<std::unique_ptr<Candidate>>& candidates,
                        const SweepOptions& options);

// Evaluates one (candidate, case, dtype) on its own: the building block of the sweep
// and of the tests. `yardstick` as SweepOptions::yardstick.
Record evaluate_one(Candidate& candidate, const GridCase& gc, DType dtype,
                    const Tolerance& tolerance, std::size_t max_logit_rows = kSweepLogitRows,
                    const DiagnosisOptions& diagnosis = {}, const CandidateFactory& yardstick = {});
// The same for either pass (the candidate must have the backward pass for Pass::backward).
Record evaluate_one(Candidate& candidate, const GridCase& gc, DType dtype, Pass pass,
                    const Tolerance& tolerance, const DiagnosisOptions& diagnosis = {});

}  // namespace xposcheck
