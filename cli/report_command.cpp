// `xposcheck report`: the HTML accuracy report, JUnit XML and Markdown summary of a
// results file. It does not gate: exit 0 when the files are written, 2 when the
// results cannot be read or an output cannot be written.
#include <fmt/format.h>
#include <memory>
#include <string>

#include "commands.hpp"
#include "file_flags.hpp"
#include "terminal_print.hpp"
#include "xposcheck/harness/results.hpp"
#include "xposcheck/reports/report_files.hpp"
#include "xposcheck/reports/summary.hpp"

namespace xposcheck::cli {
namespace {

struct ReportCommandOptions {
  std::string results;
  ReportFiles files;
  GatePolicy gate;
};

int run_report(const ReportCommandOptions& o) {
  if (o.files.empty()) {
    throw CLI::ValidationError("report", "name an output: -o FILE.html, --junit FILE or --summary FILE");
  }
  check_files_distinct({{"results", o.results}, {"--out", o.files.html.string(), true},
                        {"--junit", o.files.junit.string(), true}, {"--summary", o.files.markdown.string(), true}});
  const Results results = read_results(o.results);  // ResultsError names the file
  const GateVerdict verdict = gate_verdict(results, o.gate);
  write_report_files(results, o.files, verdict);
  for (const auto& [label, file] : {std::pair{"html", &o.files.html}, std::pair{"junit", &o.files.junit},
                                    std::pair{"summary", &o.files.markdown}}) {
    if (!file->empty()) print_text("{}: {}\n", label, file->string());
  }
  print_text("{} results; the gate would {} ({} failing)\n", results.records.size(),
             verdict.records_failed() ? "FAIL" : "PASS", verdict.failing);
  return kExitOk;
}

}  // namespace

void setup_report(CLI::App& app, ExitStatus& status) {
  auto options = std::make_shared<ReportCommandOptions>();
  auto* sub = app.add_subcommand("report", "Write the HTML report, JUnit XML and Markdown summary of a "
                                           "results file (exit 0; 2 for unreadable results)");
  sub->add_option("results", options->results, "Results file written by `xposcheck sweep`")->required();
  sub->add_option("-o,--out", options->files.html, "HTML accuracy report (one self-contained file)");
  sub->add_option("--junit", options->files.junit, "JUnit XML for CI test dashboards");
  sub->add_option("--summary", options->files.markdown, "Markdown summary (e.g. $GITHUB_STEP_SUMMARY)");
  sub->add_flag("--fail-on-out-of-range", options->gate.out_of_range_fails,
                "Count OUT_OF_RANGE as a gate failure, as `sweep --fail-on-out-of-range` does");
  sub->callback([options, &status] { status.code = run_report(*options); });
}

}  // namespace xposcheck::cli
