// What a resumed sweep must share with the run whose records it keeps. Records
// judged under other settings would keep their old verdicts while the file records
// the new settings, so any difference refuses the resume.
#include <algorithm>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "results_json.hpp"
#include "xposcheck/harness/results.hpp"

namespace xposcheck {
namespace {

using nlohmann::json;

std::string listed(std::vector<std::string> items) {
  std::sort(items.begin(), items.end());
  return items.empty() ? "none" : fmt::format("{}", fmt::join(items, ","));
}

void compare_sets(const char* flag, const std::vector<std::string>& a, const std::vector<std::string>& b,
                  std::vector<std::string>& out) {
  if (std::set(a.begin(), a.end()) == std::set(b.begin(), b.end())) return;
  out.push_back(fmt::format("its run used {} {}, this one {}", flag, listed(a), listed(b)));
}

// The command-line flag of each resolved tolerance field (docs/cli-sweep.md).
const char* tolerance_flag(const std::string& key) {
  static const std::pair<const char*, const char*> flags[] = {
      {"rule", "--tolerance-rule"},     {"base_ulps", "--base-ulps"},       {"angle_factor", "--angle-factor"},
      {"scale_factor", "--scale-factor"}, {"logits_factor", "--logits-factor"}, {"logits_bias", "--logits-bias"},
      {"relative_k", "--relative-k"},   {"relative_floor_ulps", "--relative-floor"}};
  for (const auto& [field, flag] : flags) {
    if (key == field) return flag;
  }
  return "tolerance";
}

std::string shown(const json& j) {
  if (j.is_null()) return "unset";
  if (j.is_number()) return fmt::format("{}", j.get<double>());  // 8, not 8.0
  return j.is_string() ? j.get<std::string>() : j.dump();
}

void compare_tolerance(const RunInfo& a, const RunInfo& b, std::vector<std::string>& out) {
  std::set<std::string> dtypes;
  for (const auto& [d, spec] : a.tolerance) dtypes.insert(d);
  for (const auto& [d, spec] : b.tolerance) dtypes.insert(d);
  for (const std::string& d : dtypes) {
    const auto ia = a.tolerance.find(d), ib = b.tolerance.find(d);
    if (ia == a.tolerance.end() || ib == b.tolerance.end()) continue;  // a dtype difference, said once
    const json ja = spec_to_json(ia->second), jb = spec_to_json(ib->second);
    std::set<std::string> keys;
    for (const auto& [k, v] : ja.items()) keys.insert(k);
    for (const auto& [k, v] : jb.items()) keys.insert(k);
    for (const std::string& k : keys) {
      const json va = ja.value(k, json()), vb = jb.value(k, json());
      if (va == vb) continue;
      out.push_back(fmt::format("its run used {} {} ({}), this one {}", tolerance_flag(k), shown(va), d, shown(vb)));
    }
  }
}

}  // namespace

std::vector<std::string> resume_differences(const RunInfo& earlier, const RunInfo& now) {
  std::vector<std::string> out;
  if (earlier.grid_fingerprint != now.grid_fingerprint) {
    out.push_back(fmt::format("its run used another grid ({} {}, this one {} {})", earlier.grid_name,
                              earlier.grid_fingerprint, now.grid_name, now.grid_fingerprint));
  }
  compare_sets("--candidate", earlier.candidates, now.candidates, out);
  for (const auto& [name, code] : now.candidate_code) {
    const auto it = earlier.candidate_code.find(name);
    if (it != earlier.candidate_code.end() && it->second != code)
      out.push_back(fmt::format("its candidate {} was other code ({}), this one {}", name, it->second, code));
  }
  compare_sets("--dtypes", earlier.dtypes, now.dtypes, out);
  compare_tolerance(earlier, now, out);
  compare_sets("--accept-convention", earlier.accept_conventions, now.accept_conventions, out);
  if (earlier.logit_rows != now.logit_rows)
    out.push_back(fmt::format("its run used --logit-rows {}, this one {}", earlier.logit_rows, now.logit_rows));
  if (earlier.shard != now.shard) {
    out.push_back(fmt::format("its run used --shard {}, this one {}", earlier.shard.empty() ? "none" : earlier.shard,
                              now.shard.empty() ? "none" : now.shard));
  }
  return out;
}

}  // namespace xposcheck
