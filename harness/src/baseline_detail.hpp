#pragma once
// Shared by the baseline sources: rounding, ordering and the JSON of drift evidence.
#include <nlohmann/json.hpp>
#include <string>

#include "xposcheck/harness/baseline.hpp"

namespace xposcheck {

// To 4 significant digits, so that runs which differ only in the last bits of an
// error statistic still write identical baselines.
double round_significant(double v);

bool entry_order(const BaselineEntry& a, const BaselineEntry& b);

// Whether an error moved from `before` to `now` beyond the options (both ways).
bool error_grew(double before, double now, const DriftOptions& options);
// "k_out max 3.1 -> 40.2 ulps (x13)".
std::string error_change(const std::string& tensor, const char* measure, double before, double now);

std::string_view verdict_name(DriftVerdict v);  // "unchanged", "regressed", "improved", "new"
std::optional<DriftVerdict> parse_verdict(std::string_view name);

nlohmann::json drift_to_json(const DriftInfo& drift);
DriftInfo drift_from_json(const nlohmann::json& j);

nlohmann::json envelopes_to_json(const std::vector<Envelope>& envelopes);

}  // namespace xposcheck
