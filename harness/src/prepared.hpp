#pragma once
// A sweep's unit of work made ready for its candidates (inputs, golden outputs, tables,
// yardsticks) and judged from their attempts: what every pass of the sweep shares.
#include <memory>
#include <optional>
#include <vector>

#include "xposcheck/harness/blocks.hpp"
#include "xposcheck/harness/candidate.hpp"
#include "xposcheck/harness/diagnosis.hpp"
#include "xposcheck/harness/stream.hpp"
#include "xposcheck/harness/sweep.hpp"
#include "xposcheck/reference/golden.hpp"
#include "xposcheck/reference/inputs.hpp"
#include "xposcheck/reference/tables.hpp"

namespace xposcheck::detail {

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
  Job whole_job() const;
  // A stream's case in one call, as a case without the stream (forward).
  Job one_call_job() const;
};

// The inputs alone: all a candidate needs to start on the case, given its inputs,
// which took `drawn_s` to draw.
Prepared prepare_inputs(const GridCase& gc, DType dtype, Pass pass, Inputs inputs, double drawn_s);
// `drawn`: the same case's inputs, already drawn for its other pass.
Prepared prepare_inputs(const GridCase& gc, DType dtype, Pass pass, const Inputs* drawn = nullptr);
// The golden outputs (or gradients) and tables, to judge the candidate by.
void add_golden(Prepared& p, std::size_t logit_rows);
Prepared prepare(const GridCase& gc, DType dtype, Pass pass, std::size_t logit_rows);

// The record of one attempt: compared, checked as a stream or packed batch, diagnosed.
Record judge(const Candidate& candidate, const Prepared& p, const Attempt& attempt,
             double candidate_s, const Tolerance& tol, const DiagnosisOptions& diagnosis,
             const Attempt* one_pass = nullptr);
// Runs the candidate on the case and judges it.
Record run_prepared(Candidate& candidate, const Prepared& p, const Tolerance& tol,
                    const DiagnosisOptions& diagnosis);

// The relative rule's yardstick of a long case, judged in blocks too; none under
// another rule.
std::optional<Record> yardstick_in_blocks(const GridCase& gc, DType dtype, const Tolerance& tol,
                                          const CandidateFactory& yardstick, const BlockOptions& blocks);
// The relative rule's yardstick records (a packed batch's, one per sequence); none
// under another rule.
void add_yardsticks(Prepared& p, const Tolerance& tol, const CandidateFactory& yardstick);

}  // namespace xposcheck::detail
