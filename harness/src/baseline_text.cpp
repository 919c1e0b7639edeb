// What people read: the drift report after a sweep and the diff of two baselines.
#include <fmt/format.h>
#include <map>
#include <tuple>

#include "baseline_detail.hpp"
#include "results_json.hpp"

namespace xposcheck {
namespace {

std::string record_name(const Record& r) {
  return fmt::format("{} {} {}", r.candidate, r.case_id, dtype_name(r.dtype));
}

std::string envelope_reach(long max_seq_len) {
  return max_seq_len > 0 ? fmt::format("N<={}", max_seq_len) : "none";
}

void list_records(std::string& out, const Results& results, DriftVerdict verdict, std::size_t limit) {
  std::size_t shown = 0, total = 0;
  for (const Record& r : results.records) {
    if (!r.drift || r.drift->verdict != verdict) continue;
    if (++total > limit) continue;
    ++shown;
    out += fmt::format("  {:<9} {}: {}{}\n", verdict == DriftVerdict::regressed ? "REGRESSED" : "improved",
                       record_name(r), r.outcome == Outcome::drift ? "DRIFT: " : "", r.drift->note);
  }
  if (total > shown) out += fmt::format("  ... and {} more {} (see the results file)\n", total - shown, verdict_name(verdict));
}

}  // namespace

std::string format_drift(const Results& results, const DriftReport& report, std::size_t limit) {
  std::string out = fmt::format("drift: {} compared, {} regressed, {} improved, {} unchanged, {} new", report.compared,
                                report.regressed, report.improved, report.unchanged, report.new_cases);
  out += report.missing ? fmt::format(" ({} baseline entries not run)\n", report.missing) : "\n";
  for (const std::string& note : report.notes) out += "  note: " + note + "\n";
  list_records(out, results, DriftVerdict::regressed, limit);
  for (const EnvelopeChange& c : report.envelope_changes) {
    out += fmt::format("  {:<9} envelope {} {} M={}: {} -> {}\n",
                       c.verdict == DriftVerdict::regressed ? "REGRESSED" : "improved", c.candidate,
                       dtype_name(c.dtype), c.mem_len, envelope_reach(c.baseline_max), envelope_reach(c.max));
  }
  list_records(out, results, DriftVerdict::improved, limit);
  return out;
}

namespace {

using EntryMap = std::map<std::tuple<std::string, std::string, std::string, Pass>, const BaselineEntry*>;

EntryMap by_key(const Baseline& b) {
  EntryMap m;
  for (const BaselineEntry& e : b.entries) m[{e.candidate, e.case_id, std::string(dtype_name(e.dtype)), e.pass}] = &e;
  return m;
}

std::string entry_name(const BaselineEntry& e) {
  std::string name = fmt::format("{} {} {}", e.candidate, e.case_id, dtype_name(e.dtype));
  if (e.pass != Pass::forward) name.append(" ").append(pass_name(e.pass));
  return name;
}

// The listed error changes of one entry present in both; `small` counts entries whose
// numbers moved without crossing the options.
void diff_entry(const BaselineEntry& a, const BaselineEntry& b, const DriftOptions& o, BaselineDiff& d,
                std::size_t& small) {
  if (a.outcome != b.outcome) {
    d.lines.push_back(fmt::format("~ {}: outcome {} -> {}", entry_name(a), outcome_name(a.outcome), outcome_name(b.outcome)));
  }
  std::vector<std::string> moved;
  for (const BaselineTensor& tb : b.tensors) {
    for (const BaselineTensor& ta : a.tensors) {
      if (ta.name != tb.name) continue;
      if (error_grew(ta.max_ulps, tb.max_ulps, o) || error_grew(tb.max_ulps, ta.max_ulps, o))
        moved.push_back(error_change(ta.name, "max", ta.max_ulps, tb.max_ulps));
      if (error_grew(ta.rms_ulps, tb.rms_ulps, o) || error_grew(tb.rms_ulps, ta.rms_ulps, o))
        moved.push_back(error_change(ta.name, "rms", ta.rms_ulps, tb.rms_ulps));
    }
  }
  for (const std::string& m : moved) d.lines.push_back(fmt::format("~ {}: {}", entry_name(a), m));
  if (moved.empty() && a.outcome == b.outcome && !(a == b)) ++small;
}

void diff_entries(const Baseline& before, const Baseline& after, const DriftOptions& o, BaselineDiff& d) {
  const EntryMap a = by_key(before), b = by_key(after);
  std::size_t small = 0;
  for (const auto& [key, e] : a) {
    const auto it = b.find(key);
    if (it == b.end()) d.lines.push_back(fmt::format("- {}: {} (removed)", entry_name(*e), outcome_name(e->outcome)));
    else diff_entry(*e, *it->second, o, d, small);
  }
  for (const auto& [key, e] : b) {
    if (!a.count(key)) d.lines.push_back(fmt::format("+ {}: {} (new)", entry_name(*e), outcome_name(e->outcome)));
  }
  if (small) {
    d.lines.push_back(fmt::format("  {} entries with error changes within x{:g} or {:g} ulp (not listed)", small,
                                  o.factor, o.floor_ulps));
  }
}

void diff_envelopes(const Baseline& before, const Baseline& after, BaselineDiff& d) {
  std::map<std::tuple<std::string, DType, long>, std::pair<const EnvelopeLimit*, const EnvelopeLimit*>> limits;
  for (const Envelope& e : before.envelopes)
    for (const EnvelopeLimit& l : e.limits) limits[{e.candidate, e.dtype, l.mem_len}].first = &l;
  for (const Envelope& e : after.envelopes)
    for (const EnvelopeLimit& l : e.limits) limits[{e.candidate, e.dtype, l.mem_len}].second = &l;
  for (const auto& [key, pair] : limits) {
    const auto& [a, b] = pair;
    if (a && b && *a == *b) continue;
    const std::string name = fmt::format("envelope {} {}", std::get<0>(key), dtype_name(std::get<1>(key)));
    d.lines.push_back(fmt::format("~ {}: {} -> {}", name, a ? describe_limit(*a) : "(none)", b ? describe_limit(*b) : "(none)"));
  }
}

void diff_header(const Baseline& a, const Baseline& b, BaselineDiff& d) {
  if (a.tool_version != b.tool_version) d.lines.push_back(fmt::format("~ tool version: {} -> {}", a.tool_version, b.tool_version));
  if (a.grid_name != b.grid_name || a.grid_fingerprint != b.grid_fingerprint) {
    d.lines.push_back(fmt::format("~ grid: {} {} -> {} {}", a.grid_name, a.grid_fingerprint, b.grid_name, b.grid_fingerprint));
  }
  auto specs = [](const Baseline& x) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [dtype, spec] : x.tolerance) j[dtype] = spec_to_json(spec);
    return j;
  };
  if (specs(a) != specs(b)) d.lines.push_back(fmt::format("~ tolerance: {} -> {}", specs(a).dump(), specs(b).dump()));
}

}  // namespace

BaselineDiff diff_baselines(const Baseline& before, const Baseline& after, const DriftOptions& options) {
  BaselineDiff d;
  d.identical = format_baseline(before) == format_baseline(after);
  if (d.identical) return d;
  diff_header(before, after, d);
  diff_envelopes(before, after, d);
  diff_entries(before, after, options, d);
  return d;
}

}  // namespace xposcheck
