#pragma once
// The CI gate: which outcomes fail it (the policy, chosen on the command line) and the
// one verdict of a run, computed once from the results and the drift report and
// handed to every reporter and to the command line.
#include <cstddef>

#include "xposcheck/harness/outcome.hpp"

namespace xposcheck {

struct Results;
struct DriftReport;

struct GatePolicy {
  // OUT_OF_RANGE is a property of the dtype, not of the candidate, so it passes
  // unless asked otherwise (--fail-on-out-of-range).
  bool out_of_range_fails = false;
};

// Whether the outcome fails the gate under the policy.
bool fails_gate(Outcome o, const GatePolicy& policy = {});

struct GateVerdict {
  GatePolicy policy;
  std::size_t failing = 0;       // records whose outcome fails the gate
  std::size_t total = 0;         // records
  bool drift_failed = false;     // the baseline's own gate (DriftReport::gate_failed)
  bool envelope_shrank = false;  // it failed with no regressed record: an envelope shrank

  // The records alone: what the reports, which know no baseline, show.
  bool records_failed() const { return failing > 0; }
  bool failed() const { return records_failed() || drift_failed; }
};

GateVerdict gate_verdict(const Results& results, const GatePolicy& policy = {},
                         const DriftReport* drift = nullptr);

}  // namespace xposcheck
