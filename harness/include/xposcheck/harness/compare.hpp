#pragma once
// Comparison of a candidate's outputs with the golden ones: shapes and dtypes first,
// then values in dtype ulps at the pair magnitude, position-aware tolerances.
#include <functional>

#include "xposcheck/harness/candidate.hpp"
#include "xposcheck/harness/record.hpp"
#include "xposcheck/harness/tolerance.hpp"
#include "xposcheck/reference/golden.hpp"
#include "xposcheck/reference/tables.hpp"

namespace xposcheck {

struct CompareOptions {
  std::size_t curve_bins = 48;
  // Relative rule: the fp32-angles candidate's record on the same inputs; each
  // tensor may be off by relative_k times its max error plus the floor.
  const Record* yardstick = nullptr;
  // Streams: the key rows query row m saw (the keys cached when its call ran); the
  // logits of later keys are no part of what attention computed. Empty: every key.
  std::function<long(long m)> visible_keys;
  // Backward: the golden outputs are the golden gradients, the tensors are named dq
  // and dk, and there are no logits to compare.
  Pass pass = Pass::forward;
};

// Fills record.outcome, message, tensors, shape, range and max_ratio.
void compare_outputs(const Case& c, DType dtype, const Golden& golden,
                     const RotaryTables& tables, const CandidateOutput& output,
                     const Tolerance& tolerance, Record& record,
                     const CompareOptions& options = {});

// Whether q_out and k_out (dq and dk for the backward pass) have the case's shapes and
// the dtype; if not, the record is DIM_MISMATCH saying which and how.
bool check_output_shapes(const Case& c, DType dtype, const CandidateOutput& output, Record& record,
                         Pass pass = Pass::forward);

// Turns a failed attempt into the record's outcome and evidence.
void record_failure(const Case& c, const CandidateFailure& failure, Record& record);

}  // namespace xposcheck
