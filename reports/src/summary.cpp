#include "xposcheck/reports/summary.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace xposcheck {

void SummaryTable::begin(const RunInfo&, const GateVerdict& verdict) {
  *this = SummaryTable(verdict.policy);
}

std::string dtype_pass_label(DTypePass column) {
  std::string label(dtype_name(column.dtype));
  if (column.pass != Pass::forward) label.append(" ").append(pass_name(column.pass));
  return label;
}

void SummaryTable::record(const Record& r) {
  const auto key = std::make_tuple(r.candidate, r.dtype, r.pass);
  auto it = index_.find(key);
  if (it == index_.end()) {
    it = index_.emplace(key, rows_.size()).first;
    SummaryRow row;
    row.candidate = r.candidate;
    row.dtype = r.dtype;
    row.pass = r.pass;
    rows_.push_back(row);
  }
  SummaryRow& row = rows_[it->second];
  ++row.counts[static_cast<std::size_t>(r.outcome)];
  ++row.total;
  const bool failed = fails_gate(r, policy_);
  row.gate_failed = row.gate_failed || failed;
  row.gate_failures += failed ? 1 : 0;
  row.in_range_failures += in_range_part_fails(r) ? 1 : 0;
  // A record accepted under a convention holds errors against SPEC's frame, which it
  // does not follow: whole rotations, not its accuracy (its err/tol is its own frame's).
  for (const TensorStats& t : r.tensors) {
    if (!t.compared || accepted_convention(r)) continue;
    row.worst_ulps = std::max(row.worst_ulps, t.max_ulps);
    if (std::isfinite(t.mean_ulps)) {
      row.ulps_sum += t.mean_ulps * static_cast<double>(t.elements);
      row.ulps_elements += t.elements;
    }
  }
  if ((r.outcome == Outcome::pass || r.outcome == Outcome::tolerance) &&
      r.max_ratio > row.worst_ratio) {
    row.worst_ratio = r.max_ratio;
    row.worst_case = r.case_id;
  }
}

std::size_t SummaryTable::failures() const {
  std::size_t n = 0;
  for (const SummaryRow& row : rows_) n += row.gate_failures;
  return n;
}

void print_summary(std::ostream& out, const SummaryTable& table) {
  std::vector<Outcome> seen;
  for (Outcome o : kAllOutcomes) {
    const bool any = std::any_of(table.rows().begin(), table.rows().end(),
                                 [o](const SummaryRow& r) { return r.count(o) > 0; });
    if (any || o == Outcome::pass) seen.push_back(o);
  }
  std::string header = fmt::format("{:<22} {:<5}", "candidate", "dtype");
  for (Outcome o : seen) header += fmt::format(" {:>12}", outcome_name(o));
  header += fmt::format(" {:>12} {:>10}  {}", "worst ulps", "err/tol", "gate");
  out << header << '\n' << std::string(header.size(), '-') << '\n';
  for (const SummaryRow& row : table.rows()) {
    std::string line = fmt::format("{:<22} {:<5}", row.candidate, dtype_pass_label(row.column()));
    for (Outcome o : seen) line += fmt::format(" {:>12}", row.count(o));
    line += fmt::format(" {:>12.4g} {:>10.3g}  {}", row.worst_ulps, row.worst_ratio,
                        row.gate_failed ? "FAIL" : "ok");
    out << line << '\n';
  }
  for (const SummaryRow& row : table.rows()) {
    if (row.in_range_failures == 0) continue;
    out << fmt::format("{} {}: {} OUT_OF_RANGE records fail the gate: the part the dtype can hold "
                       "is wrong too\n", row.candidate, dtype_pass_label(row.column()), row.in_range_failures);
  }
}

void print_envelopes(std::ostream& out, const std::vector<Envelope>& envelopes) {
  for (const Envelope& e : envelopes) out << describe_envelope(e) << '\n';
}

void print_horizons(std::ostream& out, const std::vector<HorizonSummary>& horizons) {
  for (const HorizonSummary& h : horizons) out << describe_horizon(h) << '\n';
}

}  // namespace xposcheck
