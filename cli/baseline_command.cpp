// xposcheck baseline save | update | diff | check: regression baselines
// (docs/baselines.md). Nothing is ever regenerated silently: save refuses to replace
// a file, update writes only with --write after showing the diff.
#include <filesystem>
#include <fmt/format.h>
#include <iostream>
#include <memory>

#include "commands.hpp"
#include "file_flags.hpp"
#include "numeric_flags.hpp"
#include "terminal_print.hpp"
#include "xposcheck/harness/baseline.hpp"

namespace xposcheck::cli {
namespace {

struct BaselineOptions {
  std::string results, baseline, other, out;
  bool force = false, write = false;
  double factor = 2.0, floor_ulps = 1.0;

  DriftOptions drift() const { return DriftOptions{factor, floor_ulps, {}}; }
};

int run_save(const BaselineOptions& o) {
  check_files_distinct({{"results", o.results}, {"--out", o.out, true}});
  if (std::filesystem::exists(o.out) && !o.force) {
    throw CLI::ValidationError("-o", fmt::format("{} exists: review changes with `xposcheck baseline update {} -b {}`, "
                                                 "or pass --force to replace it", o.out, o.results, o.out));
  }
  const Baseline b = make_baseline(read_results(o.results));
  write_baseline(o.out, b);
  print_text("baseline {}: {} entries, {} envelopes, grid {} {}\n", o.out, b.entries.size(), b.envelopes.size(),
             b.grid_name, b.grid_fingerprint);
  return kExitOk;
}

void print_diff(const BaselineDiff& d) {
  for (const std::string& line : d.lines) print_text("{}\n", line);
}

int run_update(const BaselineOptions& o) {
  check_files_distinct({{"results", o.results}, {"--baseline", o.baseline, o.write}});
  const Baseline before = read_baseline(o.baseline);
  const Baseline after = make_baseline(read_results(o.results));
  const BaselineDiff d = diff_baselines(before, after, o.drift());
  if (d.identical) {
    print_text("baseline {} is up to date\n", o.baseline);
    return kExitOk;
  }
  print_diff(d);
  if (!o.write) {
    print_text("baseline {} differs from {} ({} lines above); nothing written: run again with --write to "
               "accept the changes\n", o.baseline, o.results, d.lines.size());
    return kExitGateFailed;
  }
  write_baseline(o.baseline, after);
  print_text("baseline {} updated\n", o.baseline);
  return kExitOk;
}

int run_diff(const BaselineOptions& o) {
  const BaselineDiff d = diff_baselines(read_baseline(o.baseline), read_baseline(o.other), o.drift());
  if (d.identical) print_text("baselines are identical\n");
  print_diff(d);
  return d.identical ? kExitOk : kExitGateFailed;
}

int run_check(const BaselineOptions& o) {
  check_files_distinct({{"results", o.results}, {"--baseline", o.baseline}, {"--out", o.out, true}});
  Results results = read_results(o.results);
  const DriftReport report = apply_baseline(results, read_baseline(o.baseline), o.drift());
  std::cout << terminal_text("baseline: " + o.baseline + '\n' + format_drift(results, report));
  if (!o.out.empty()) {
    write_results(o.out, results);
    print_text("results with drift evidence: {}\n", o.out);
  }
  std::size_t drift = 0;
  for (const Record& r : results.records) drift += r.outcome == Outcome::drift ? 1 : 0;
  print_text("drift gate: {} ({} DRIFT records, {} regressions)\n", report.gate_failed() ? "FAIL" : "PASS", drift,
             report.regressed);
  return report.gate_failed() ? kExitGateFailed : kExitOk;
}

void add_drift_options(CLI::App& sub, BaselineOptions& o) {
  sub.add_option("--drift-factor", o.factor, "An error change beyond this factor counts...")
      ->check(FiniteRange(1.0, 1e12))->capture_default_str();
  sub.add_option("--drift-floor", o.floor_ulps, "...when it also exceeds this many ulps")
      ->check(FiniteRange(0))->capture_default_str();
}

}  // namespace

void setup_baseline(CLI::App& app, ExitStatus& status) {
  auto o = std::make_shared<BaselineOptions>();
  auto* cmd = app.add_subcommand("baseline", "Regression baselines: save, review and apply (docs/baselines.md)");
  cmd->require_subcommand(1);

  auto* save = cmd->add_subcommand("save", "Write a new baseline from a results file");
  save->add_option("results", o->results, "Results file (JSON) of a whole grid")->required()->check(CLI::ExistingFile);
  save->add_option("-o,--out", o->out, "Baseline file to create")->required();
  save->add_flag("--force", o->force, "Replace an existing baseline without review");
  save->callback([o, &status] { status.code = run_save(*o); });

  auto* update = cmd->add_subcommand("update", "Show how results differ from a baseline; --write accepts them");
  update->add_option("results", o->results, "Results file (JSON) of a whole grid")->required()->check(CLI::ExistingFile);
  update->add_option("-b,--baseline", o->baseline, "Baseline file")->required()->check(CLI::ExistingFile);
  update->add_flag("--write", o->write, "Write the new baseline (without it: the diff only, exit 1 if it differs)");
  add_drift_options(*update, *o);
  update->callback([o, &status] { status.code = run_update(*o); });

  auto* diff = cmd->add_subcommand("diff", "Compare two baseline files (exit 1 when they differ)");
  diff->add_option("old", o->baseline, "Earlier baseline")->required()->check(CLI::ExistingFile);
  diff->add_option("new", o->other, "Later baseline")->required()->check(CLI::ExistingFile);
  add_drift_options(*diff, *o);
  diff->callback([o, &status] { status.code = run_diff(*o); });

  auto* check = cmd->add_subcommand("check", "Apply a baseline to stored results (e.g. merged shards) and gate");
  check->add_option("results", o->results, "Results file (JSON)")->required()->check(CLI::ExistingFile);
  check->add_option("-b,--baseline", o->baseline, "Baseline file")->required()->check(CLI::ExistingFile);
  check->add_option("-o,--out", o->out, "Also write the results with their drift evidence here");
  add_drift_options(*check, *o);
  check->callback([o, &status] { status.code = run_check(*o); });
}

}  // namespace xposcheck::cli
