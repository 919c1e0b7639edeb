#include "xposcheck/harness/gate.hpp"

#include "xposcheck/harness/baseline.hpp"
#include "xposcheck/harness/results.hpp"

namespace xposcheck {

bool fails_gate(Outcome o, const GatePolicy& policy) {
  if (o == Outcome::pass) return false;
  if (o == Outcome::out_of_range) return policy.out_of_range_fails;
  return true;
}

bool in_range_part_fails(const Record& r) {
  if (r.outcome != Outcome::out_of_range) return false;
  // A record without its range evidence cannot show that the rest passed.
  return !r.range || r.range->in_range_outcome != outcome_name(Outcome::pass);
}

bool fails_gate(const Record& r, const GatePolicy& policy) {
  return fails_gate(r.outcome, policy) || in_range_part_fails(r);
}

GateVerdict gate_verdict(const Results& results, const GatePolicy& policy, const DriftReport* drift) {
  GateVerdict v;
  v.policy = policy;
  v.total = results.records.size();
  for (const Record& r : results.records) v.failing += fails_gate(r, policy) ? 1 : 0;
  v.drift_failed = drift && drift->gate_failed();
  v.envelope_shrank = v.drift_failed && drift->regressed == 0;
  return v;
}

}  // namespace xposcheck
