#include "xposcheck/harness/baseline.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <tuple>

#include "baseline_detail.hpp"

namespace xposcheck {

std::string BaselineEntry::key() const { return record_key(candidate, case_id, dtype, pass); }

namespace {

BaselineEntry entry_of(const Record& r) {
  BaselineEntry e{r.candidate, r.case_id, r.dtype, r.outcome == Outcome::drift ? Outcome::pass : r.outcome, {}, r.pass};
  for (const TensorStats& t : r.tensors) {
    if (t.compared) e.tensors.push_back({t.name, round_significant(t.max_ulps), round_significant(t.rms_ulps)});
  }
  return e;
}

}  // namespace

double round_significant(double v) {
  if (!std::isfinite(v) || v == 0) return v;
  return std::stod(fmt::format("{:.4g}", v));
}

bool entry_order(const BaselineEntry& a, const BaselineEntry& b) {
  return std::make_tuple(a.candidate, a.case_id, dtype_name(a.dtype), a.pass) <
         std::make_tuple(b.candidate, b.case_id, dtype_name(b.dtype), b.pass);
}

Baseline make_baseline(const Results& results) {
  if (!results.run.shard.empty()) {
    throw BaselineError(fmt::format("these results hold shard {} only; a baseline describes the whole "
                                    "grid: merge every shard first (xposcheck merge)", results.run.shard));
  }
  Baseline b;
  b.tool_version = results.run.tool_version;
  b.grid_name = results.run.grid_name;
  b.grid_fingerprint = results.run.grid_fingerprint;
  b.tolerance = results.run.tolerance;
  b.envelopes = compute_envelopes(results);
  for (const Record& r : results.records) b.entries.push_back(entry_of(r));
  std::sort(b.entries.begin(), b.entries.end(), entry_order);
  return b;
}

bool DriftReport::gate_failed() const {
  return regressed > 0 || std::any_of(envelope_changes.begin(), envelope_changes.end(),
                                      [](const EnvelopeChange& c) { return c.verdict == DriftVerdict::regressed; });
}

}  // namespace xposcheck
