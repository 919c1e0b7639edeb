#pragma once
// Judging a case again in an accepted convention's frame (docs/diagnosis.md).
#include "xposcheck/harness/diagnosis.hpp"
#include "xposcheck/harness/record.hpp"

namespace xposcheck::diagnosis {

// The case judged again in the frame from the whole tensors the input holds: golden
// outputs of the frame (moved by its centre offset) against the candidate's outputs,
// every element and the logits.
Record judged_whole_in_frame(const DiagnosisInput& in, const ConventionFrame& frame);

}  // namespace xposcheck::diagnosis
