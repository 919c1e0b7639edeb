// xposcheck explain: the diagnosis of every failing record of a results file; for one
// case (--case) also the phase / magnitude decomposition behind it.
#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>

#include "commands.hpp"
#include "terminal_print.hpp"
#include "xposcheck/harness/diagnosis.hpp"
#include "xposcheck/harness/results.hpp"

namespace xposcheck::cli {
namespace {

struct ExplainOptions {
  std::string results;
  std::string case_id;
  std::string candidate;
  bool hypotheses = false;
};

std::string shift_text(const char* what, const std::optional<double>& v) {
  return v ? fmt::format("{} {:+.4g}", what, *v) : "";
}

void print_estimates(const Estimates& e) {
  std::string line;
  for (const std::string& part :
       {shift_text("query shift", e.query_shift), shift_text("key shift", e.key_shift),
        e.query_centre ? fmt::format("query centre {:.4g}", *e.query_centre) : std::string(),
        e.key_centre ? fmt::format("key centre {:.4g}", *e.key_centre) : std::string()}) {
    if (!part.empty()) line += (line.empty() ? "" : ", ") + part;
  }
  print_text("  estimates: {}\n",
             line.empty() ? "none (errors are not those of a pure shift)" : line);
}

void print_decomposition(const Diagnosis& d) {
  print_estimates(d.estimates);
  for (const TensorDecomposition& t : d.decomposition) {
    print_text(
        "  {}: {} pairs used ({} skipped); max angle error {:.4g} rad at position {} pair {}; "
        "max log-scale error {:.4g}; angle error {:.3g} |phi| eps; pass-through change {:.3g}\n",
        t.tensor, t.pairs_used, t.pairs_skipped, t.max_angle_error, t.worst_angle_position,
        t.worst_angle_pair, t.max_log_scale_error, t.angle_error_per_phi_eps,
        t.passthrough_max_rel_change);
    print_text("    {:>5} {:>11} | {:>11} {:>11} {:>9} | {:>11} {:>11} {:>9}\n", "pair", "omega",
               "angle slope", "intercept", "residual", "log slope", "intercept", "residual");
    for (const FrequencyFit& f : t.fits) {
      print_text(
          "    {:>5} {:>11.4g} | {:>11.4g} {:>11.4g} {:>9.3g} | {:>11.4g} {:>11.4g} {:>9.3g}\n",
          f.pair, f.omega, f.angle.slope, f.angle.intercept, f.angle.residual, f.log_scale.slope,
          f.log_scale.intercept, f.log_scale.residual);
    }
  }
  std::string tried = fmt::format("SPEC (max error/allowed >= {:.3g})", d.spec.max_ratio);
  for (const HypothesisScore& s : d.tried) {
    tried += fmt::format(", {} ({}{:.3g})", s.name, s.fits ? "fits, max " : ">= ", s.max_ratio);
  }
  print_text("  scores: {}\n", tried);
}

void print_record(const Record& r, bool detailed) {
  print_text("{} {} {} {}\n", r.candidate, r.case_id, dtype_name(r.dtype), outcome_name(r.outcome));
  if (!r.diagnosis) {
    print_text("  no diagnosis stored: {}\n", r.message);
    return;
  }
  const Diagnosis& d = *r.diagnosis;
  print_text("  {}\n", summary_line(d));
  if (!d.evidence.empty()) print_text("  evidence: {}\n", d.evidence);
  if (!d.grid_setting.empty()) print_text("  elementwise in its frame with: {}\n", d.grid_setting);
  if (detailed) print_decomposition(d);
}

[[noreturn]] void unknown(const std::string& what, const std::string& value,
                          const std::set<std::string>& known, const std::string& file) {
  std::string list;
  std::size_t shown = 0;
  for (const std::string& k : known) {
    if (shown++ == 8) {
      list += ", ...";
      break;
    }
    list += (list.empty() ? "" : ", ") + k;
  }
  throw ResultsError(fmt::format("{}: no {} '{}' (it holds {} {}: {})", file, what, value,
                                 known.size(), what == "case" ? "cases" : "candidates", list));
}

// The hypotheses in the order they are tried, with their explanation templates.
int print_hypotheses() {
  for (const HypothesisInfo& h : hypothesis_catalogue()) {
    print_text("{:<22} {:<11} {}\n", h.name, h.kind, h.explanation);
  }
  return kExitOk;
}

int run_explain(const ExplainOptions& o) {
  if (o.hypotheses) return print_hypotheses();
  if (o.results.empty()) {
    print_text(stderr,
               "xposcheck explain: error: give a results file (written by `xposcheck "
               "sweep --out`), or --hypotheses\n");
    return kExitUsage;
  }
  Results results;
  try {
    results = read_results(o.results);
    std::set<std::string> cases, candidates;
    for (const Record& r : results.records) {
      cases.insert(r.case_id);
      candidates.insert(r.candidate);
    }
    if (!o.case_id.empty() && !cases.count(o.case_id)) unknown("case", o.case_id, cases, o.results);
    if (!o.candidate.empty() && !candidates.count(o.candidate))
      unknown("candidate", o.candidate, candidates, o.results);
  } catch (const std::exception& e) {
    print_text(stderr, "xposcheck explain: error: {}\n", e.what());
    return kExitUsage;
  }
  std::size_t failing = 0, explained = 0;
  for (const Record& r : results.records) {
    if (!o.case_id.empty() && r.case_id != o.case_id) continue;
    if (!o.candidate.empty() && r.candidate != o.candidate) continue;
    if (!fails_gate(r) && !r.diagnosis) continue;
    ++failing;
    if (r.diagnosis && r.diagnosis->verdict != "unexplained") ++explained;
    print_record(r, !o.case_id.empty());
  }
  print_text("{} failing or diagnosed records, {} explained, {} unexplained or without diagnosis\n",
             failing, explained, failing - explained);
  return kExitOk;
}

}  // namespace

void setup_explain(CLI::App& app, ExitStatus& status) {
  auto options = std::make_shared<ExplainOptions>();
  auto* sub = app.add_subcommand("explain", "Say why the failing records of a results file fail");
  sub->add_option("results", options->results, "Results file written by `xposcheck sweep`");
  sub->add_option("--case", options->case_id, "Only this case id, with its decomposition");
  sub->add_option("--candidate", options->candidate, "Only this candidate");
  sub->add_flag("--hypotheses", options->hypotheses,
                "List the hypotheses a failure is tested against");
  sub->callback([options, &status] { status.code = run_explain(*options); });
}

}  // namespace xposcheck::cli
