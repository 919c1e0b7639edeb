// apply_baseline: each record against its baseline entry, then the envelopes.
#include <fmt/format.h>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>

#include "baseline_detail.hpp"
#include "results_json.hpp"

namespace xposcheck {

bool error_grew(double before, double now, const DriftOptions& options) {
  return now > options.factor * before && now - before > options.floor_ulps;
}

std::string error_change(const std::string& tensor, const char* measure, double before, double now) {
  const std::string ratio = before > 0 ? fmt::format(" (x{:.3g})", now / before) : "";
  return fmt::format("{} {} {:.4g} -> {:.4g} ulps{}", tensor, measure, before, now, ratio);
}

namespace {

std::string joined(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& p : parts) {
    if (!out.empty()) out += "; ";
    out += p;
  }
  return out;
}

// The baseline and current errors of every tensor compared in both; the changes
// beyond the options go to `grown` and `shrunk`.
void compare_errors(const Record& r, const BaselineEntry& entry, const DriftOptions& options, DriftInfo& d,
                    std::vector<std::string>& grown, std::vector<std::string>& shrunk) {
  for (const TensorStats& t : r.tensors) {
    if (!t.compared) continue;
    for (const BaselineTensor& b : entry.tensors) {
      if (b.name != t.name) continue;
      d.tensors.push_back({t.name, b.max_ulps, t.max_ulps, b.rms_ulps, t.rms_ulps});
      const std::pair<const char*, std::pair<double, double>> measures[] = {
          {"max", {b.max_ulps, t.max_ulps}}, {"rms", {b.rms_ulps, t.rms_ulps}}};
      for (const auto& [measure, values] : measures) {
        const auto [before, now] = values;
        if (error_grew(before, now, options)) grown.push_back(error_change(t.name, measure, before, now));
        if (error_grew(now, before, options)) shrunk.push_back(error_change(t.name, measure, before, now));
      }
    }
  }
}

// The verdict when an outcome changed: gate-failing now and not then regresses.
void judge_outcome_change(const Record& r, const BaselineEntry& entry, DriftInfo& d) {
  d.note = fmt::format("{} in the baseline, now {}", outcome_name(entry.outcome), outcome_name(r.outcome));
  const bool failed_before = entry.outcome != Outcome::pass;  // OUT_OF_RANGE included: it shrinks the envelope
  const bool fails_now = r.outcome != Outcome::pass;
  if (fails_now && !failed_before) d.verdict = DriftVerdict::regressed;
  else if (!fails_now && failed_before) d.verdict = DriftVerdict::improved;
  else if (fails_gate(r.outcome) && !fails_gate(entry.outcome)) d.verdict = DriftVerdict::regressed;
  else if (!fails_gate(r.outcome) && fails_gate(entry.outcome)) d.verdict = DriftVerdict::improved;
}

DriftInfo judge(Record& r, const BaselineEntry* entry, const DriftOptions& options) {
  DriftInfo d;
  if (!entry) {
    d.verdict = DriftVerdict::new_case;
    d.note = "not in the baseline";
    return d;
  }
  d.baseline_outcome = entry->outcome;
  std::vector<std::string> grown, shrunk;
  compare_errors(r, *entry, options, d, grown, shrunk);
  if (r.outcome != entry->outcome) {
    judge_outcome_change(r, *entry, d);
  } else if (r.outcome == Outcome::pass && !grown.empty()) {
    d.verdict = DriftVerdict::regressed;
    d.note = joined(grown);
    r.outcome = Outcome::drift;
  } else if (r.outcome == Outcome::pass && !shrunk.empty()) {
    d.verdict = DriftVerdict::improved;
    d.note = joined(shrunk);
  }
  return d;
}

void count(DriftReport& report, DriftVerdict v) {
  switch (v) {
    case DriftVerdict::regressed: ++report.regressed; break;
    case DriftVerdict::improved: ++report.improved; break;
    case DriftVerdict::unchanged: ++report.unchanged; break;
    case DriftVerdict::new_case: ++report.new_cases; break;
  }
}

std::string mapped(const DriftOptions& options, const std::string& candidate) {
  const auto it = options.baseline_names.find(candidate);
  return it == options.baseline_names.end() ? candidate : it->second;
}

void add_notes(const Results& results, const Baseline& baseline, DriftReport& report) {
  const RunInfo& run = results.run;
  if (run.grid_fingerprint != baseline.grid_fingerprint) {
    report.notes.push_back(fmt::format("the baseline's grid ({} {}) is not this run's ({} {}): cases are matched "
                                       "by id and envelopes are not compared", baseline.grid_name,
                                       baseline.grid_fingerprint, run.grid_name, run.grid_fingerprint));
  }
  if (!run.shard.empty()) {
    report.notes.push_back(fmt::format("these results hold shard {}: envelopes are compared once the shards "
                                       "are merged", run.shard));
  }
  if (run.tool_version != baseline.tool_version) {
    report.notes.push_back(fmt::format("the baseline was written by xposcheck {}, this is {}",
                                       baseline.tool_version, run.tool_version));
  }
  for (const auto& [dtype, spec] : run.tolerance) {
    const auto it = baseline.tolerance.find(dtype);
    if (it != baseline.tolerance.end() && spec_to_json(it->second) != spec_to_json(spec)) {
      report.notes.push_back(fmt::format("the {} tolerance differs from the baseline's ({} then, {} now): "
                                         "outcome changes may come from it", dtype,
                                         spec_to_json(it->second).dump(), spec_to_json(spec).dump()));
    }
  }
}

void compare_envelopes(const Results& results, const Baseline& baseline, const DriftOptions& options,
                       DriftReport& report) {
  if (results.run.grid_fingerprint != baseline.grid_fingerprint || !results.run.shard.empty()) return;
  std::map<std::tuple<std::string, DType, long>, long> before;
  for (const Envelope& e : baseline.envelopes) {
    for (const EnvelopeLimit& l : e.limits) before[{e.candidate, e.dtype, l.mem_len}] = l.max_seq_len;
  }
  for (const Envelope& e : compute_envelopes(results)) {
    for (const EnvelopeLimit& l : e.limits) {
      const auto it = before.find({mapped(options, e.candidate), e.dtype, l.mem_len});
      if (it == before.end() || it->second == l.max_seq_len) continue;
      const DriftVerdict v = l.max_seq_len < it->second ? DriftVerdict::regressed : DriftVerdict::improved;
      report.envelope_changes.push_back({e.candidate, e.dtype, l.mem_len, it->second, l.max_seq_len, v});
    }
  }
}

}  // namespace

DriftReport apply_baseline(Results& results, const Baseline& baseline, const DriftOptions& options) {
  DriftReport report;
  add_notes(results, baseline, report);
  std::unordered_map<std::string, const BaselineEntry*> entries;
  for (const BaselineEntry& e : baseline.entries) entries.emplace(e.key(), &e);
  std::set<std::string> seen, candidates;
  for (Record& r : results.records) {
    if (r.outcome == Outcome::drift) r.outcome = Outcome::pass;  // marked by an earlier comparison
    const std::string key = record_key(mapped(options, r.candidate), r.case_id, r.dtype, r.pass);
    const auto it = entries.find(key);
    r.drift = judge(r, it == entries.end() ? nullptr : it->second, options);
    count(report, r.drift->verdict);
    if (it != entries.end()) ++report.compared;
    seen.insert(key);
    candidates.insert(mapped(options, r.candidate));
  }
  for (const BaselineEntry& e : baseline.entries) {
    if (candidates.count(e.candidate) && !seen.count(e.key())) ++report.missing;
  }
  compare_envelopes(results, baseline, options, report);
  return report;
}

}  // namespace xposcheck
