#include "xposcheck/harness/merge.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fmt/format.h>
#include <map>
#include <set>

#include "results_json.hpp"

namespace xposcheck {
namespace {

using nlohmann::json;

// "" (a whole run), "K/N" or "K1+K2+.../N" (a partial merge).
struct ShardSet {
  bool whole = true;
  std::set<std::size_t> indices;
  std::size_t count = 0;
};

std::size_t number_in(std::string_view text, const std::string& source) {
  std::size_t v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
    throw MergeError(fmt::format("{}: run.shard '{}' is not K/N", source, text));
  }
  return v;
}

ShardSet shard_set(const std::string& shard, const std::string& source) {
  ShardSet s;
  if (shard.empty()) return s;
  s.whole = false;
  const std::size_t slash = shard.find('/');
  if (slash == std::string::npos) throw MergeError(fmt::format("{}: run.shard '{}' is not K/N", source, shard));
  s.count = number_in(std::string_view(shard).substr(slash + 1), source);
  std::string_view list = std::string_view(shard).substr(0, slash);
  for (std::size_t plus; (plus = list.find('+')) != std::string_view::npos; list.remove_prefix(plus + 1)) {
    s.indices.insert(number_in(list.substr(0, plus), source));
  }
  s.indices.insert(number_in(list, source));
  return s;
}

json tolerance_json(const RunInfo& run) {
  json j = json::object();
  for (const auto& [dtype, spec] : run.tolerance) j[dtype] = spec_to_json(spec);
  return j;
}

void check_same(const MergeInput& first, const MergeInput& other, const char* what, const json& a, const json& b) {
  if (a == b) return;
  throw MergeError(fmt::format("{} and {} differ in {} ({} vs {}): they are not parts of one sweep", first.source,
                               other.source, what, a.dump(), b.dump()));
}

void check_consistent(const MergeInput& first, const MergeInput& other) {
  const RunInfo& a = first.results.run;
  const RunInfo& b = other.results.run;
  check_same(first, other, "grid fingerprint", a.grid_fingerprint, b.grid_fingerprint);
  check_same(first, other, "tool version", a.tool_version, b.tool_version);
  check_same(first, other, "tolerance", tolerance_json(a), tolerance_json(b));
  check_same(first, other, "candidates", std::set<std::string>(a.candidates.begin(), a.candidates.end()),
             std::set<std::string>(b.candidates.begin(), b.candidates.end()));
  check_same(first, other, "dtypes", std::set<std::string>(a.dtypes.begin(), a.dtypes.end()),
             std::set<std::string>(b.dtypes.begin(), b.dtypes.end()));
}

// The merged shard field: whole when any input is whole or the shards cover 1..N.
std::string merged_shard(const std::vector<MergeInput>& inputs) {
  ShardSet all{false, {}, 0};
  for (const MergeInput& in : inputs) {
    const ShardSet s = shard_set(in.results.run.shard, in.source);
    if (s.whole) return "";
    if (all.count && s.count != all.count) {
      throw MergeError(fmt::format("{} holds shard {} of a {}-way split, {} of a {}-way split: shards of "
                                   "different counts do not add up", inputs.front().source,
                                   inputs.front().results.run.shard, all.count, in.source, s.count));
    }
    all.count = s.count;
    all.indices.insert(s.indices.begin(), s.indices.end());
  }
  if (all.indices.size() == all.count) return "";
  std::string list;
  for (std::size_t k : all.indices) {
    if (!list.empty()) list += '+';
    list += std::to_string(k);
  }
  return fmt::format("{}/{}", list, all.count);
}

// Equal, numbers to 9 significant digits: the golden values carry ~1e-31 relative
// noise from which cached rotary table served them, which can reach the last bits of
// an error statistic; any real difference between two runs is far larger.
bool same_content(const json& a, const json& b) {
  if (a.is_number_float() || b.is_number_float()) {
    if (!a.is_number() || !b.is_number()) return false;
    const double x = a.get<double>(), y = b.get<double>();
    return x == y || std::fabs(x - y) <= 1e-9 * std::max(std::fabs(x), std::fabs(y));
  }
  if (a.type() != b.type() || a.size() != b.size()) return false;
  if (a.is_array()) {
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!same_content(a[i], b[i])) return false;
    }
    return true;
  }
  if (a.is_object()) {
    for (auto it = a.begin(); it != a.end(); ++it) {
      if (!b.contains(it.key()) || !same_content(it.value(), b.at(it.key()))) return false;
    }
    return true;
  }
  return a == b;
}

// Drops durations: the "timing" object and any "seconds" or "*_s" key (a diagnosis's
// own time, for one).
void drop_durations(json& j) {
  if (!j.is_object()) return;
  for (auto it = j.begin(); it != j.end();) {
    const std::string& k = it.key();
    const bool duration = k == "timing" || k == "seconds" || (k.size() > 2 && k.ends_with("_s"));
    if (duration) {
      it = j.erase(it);
    } else {
      drop_durations(it.value());
      ++it;
    }
  }
}

// A record's content: everything but how long it took.
json comparable(const Record& r) {
  json j = record_to_json(r);
  drop_durations(j);
  return j;
}

}  // namespace

Results merge_results(const std::vector<MergeInput>& inputs, const std::vector<std::string>& case_order) {
  if (inputs.empty()) throw MergeError("nothing to merge");
  for (const MergeInput& in : inputs) check_consistent(inputs.front(), in);
  Results merged;
  merged.run = inputs.front().results.run;
  merged.run.shard = merged_shard(inputs);
  std::map<std::string, std::pair<const Record*, const std::string*>> seen;
  for (const MergeInput& in : inputs) {
    if (in.results.run.started_at < merged.run.started_at) merged.run.started_at = in.results.run.started_at;
    for (const Record& r : in.results.records) {
      const auto [it, fresh] = seen.emplace(r.key(), std::make_pair(&r, &in.source));
      if (fresh) {
        merged.records.push_back(r);
      } else if (!same_content(comparable(*it->second.first), comparable(r))) {
        throw MergeError(fmt::format("{} and {} both hold {} with different content ({} vs {}): the runs "
                                     "disagree", *it->second.second, in.source, r.key(),
                                     outcome_name(it->second.first->outcome), outcome_name(r.outcome)));
      }
    }
  }
  sort_records(merged.records, case_order);
  return merged;
}

}  // namespace xposcheck
