#include "xposcheck/reports/markdown_reporter.hpp"

#include <algorithm>
#include <fmt/format.h>

#include "evidence.hpp"
#include "text_escape.hpp"

namespace xposcheck {
namespace {

using text::markdown_cell;

// PASS and every outcome some row has, in the order of SPEC section 3.
std::vector<Outcome> outcome_columns(const SummaryTable& table) {
  std::vector<Outcome> seen;
  for (Outcome o : kAllOutcomes) {
    const bool any = std::any_of(table.rows().begin(), table.rows().end(),
                                 [o](const SummaryRow& r) { return r.count(o) > 0; });
    if (any || o == Outcome::pass) seen.push_back(o);
  }
  return seen;
}

void write_table(std::ostream& out, const SummaryTable& table) {
  const std::vector<Outcome> columns = outcome_columns(table);
  std::string header = "| candidate | dtype |", rule = "|---|---|";
  for (Outcome o : columns) {
    header += fmt::format(" {} |", outcome_name(o));
    rule += "---:|";
  }
  out << header << " worst ulps | mean ulps | err/tol | gate |\n" << rule << "---:|---:|---:|---|\n";
  for (const SummaryRow& row : table.rows()) {
    std::string line = fmt::format("| {} | {} |", markdown_cell(row.candidate), dtype_pass_label(row.column()));
    for (Outcome o : columns) line += fmt::format(" {} |", row.count(o));
    line += fmt::format(" {} | {} | {} | {} |", evidence::number(row.worst_ulps),
                        evidence::number(row.mean_ulps()), evidence::number(row.worst_ratio),
                        row.gate_failed ? "**FAIL**" : "ok");
    out << line << '\n';
  }
}

// The accuracy horizon of each candidate and dtype, as the console states it.
void write_horizons(std::ostream& out, const std::vector<HorizonSummary>& horizons) {
  if (horizons.empty()) return;
  out << "\nAccuracy horizon (relative error of the pair magnitude; information, not the gate):\n\n";
  for (const HorizonSummary& h : horizons) {
    out << fmt::format("- {} {}: {}\n", markdown_cell(h.candidate), dtype_name(h.dtype),
                       markdown_cell(describe_horizon_reach(h)));
  }
}

}  // namespace

MarkdownReporter::MarkdownReporter(std::ostream& out, MarkdownOptions options)
    : out_(out), options_(options) {}

void MarkdownReporter::begin(const RunInfo& run, const GateVerdict& verdict) {
  run_ = run;
  verdict_ = verdict;
  summary_.begin(run, verdict);
  failures_.clear();
  horizons_ = HorizonTable(run.horizon_threshold);
}

void MarkdownReporter::record(const Record& r) {
  summary_.record(r);
  horizons_.add(r);
  if (!fails_gate(r, verdict_.policy)) return;
  if (failures_.size() < options_.max_failures) failures_.push_back(r);
}

void MarkdownReporter::end() {
  out_ << fmt::format("### xposcheck: gate {} ({} failing of {})\n\n",
                      verdict_.records_failed() ? "FAIL" : "PASS", verdict_.failing, verdict_.total);
  out_ << fmt::format("Grid {} ({}), xposcheck {}{}, {}\n\n", markdown_cell(run_.grid_name),
                      markdown_cell(run_.grid_source), markdown_cell(run_.tool_version),
                      run_.git_commit.empty() ? "" : " at " + markdown_cell(run_.git_commit),
                      markdown_cell(run_.started_at));
  write_table(out_, summary_);
  write_horizons(out_, horizons_.summaries());
  if (failures_.empty()) return;
  out_ << fmt::format("\nFirst {} of {} failures:\n\n", failures_.size(), verdict_.failing);
  out_ << "| candidate | dtype | case | outcome | message |\n|---|---|---|---|---|\n";
  for (const Record& r : failures_) {
    out_ << fmt::format("| {} | {} | {} | {} | {} |\n", markdown_cell(r.candidate),
                        dtype_pass_label(r), markdown_cell(r.case_id),
                        outcome_name(r.outcome), markdown_cell(r.message));
  }
}

}  // namespace xposcheck
