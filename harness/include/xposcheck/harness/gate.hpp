#pragma once
// The CI gate: which outcomes fail it (the policy, chosen on the command line) and the
// one verdict of a run, computed once from the results and the drift report and
// handed to every reporter and to the command line.
#include <cstddef>

#include "xposcheck/harness/outcome.hpp"

namespace xposcheck {

struct Results;
struct DriftReport;
struct Record;

struct GatePolicy {
  // OUT_OF_RANGE is a property of the dtype, not of the candidate, so it passes
  // unless asked otherwise (--fail-on-out-of-range).
  bool out_of_range_fails = false;
};

// Whether the outcome fails the gate under the policy. OUT_OF_RANGE passes here: it
// excuses only the elements the dtype cannot hold, which the record version checks.
bool fails_gate(Outcome o, const GatePolicy& policy = {});

// Whether the record fails the gate: its outcome, and for OUT_OF_RANGE also the part
// the dtype can hold, which must PASS (else a wrong candidate hides behind the range).
bool fails_gate(const Record& r, const GatePolicy& policy = {});

// OUT_OF_RANGE whose representable part did not PASS: it fails under every policy.
bool in_range_part_fails(const Record& r);

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
