// xposcheck sweep: every (candidate, case, dtype) of a grid, the summary and the gate.
#include <algorithm>
#include <cstdio>
#include <fmt/format.h>
#include <iostream>
#include <memory>
#include <set>
#include <unistd.h>

#include "commands.hpp"
#include "drift_gate.hpp"
#include "run_info.hpp"
#include "sweep_options.hpp"
#include "xposcheck/harness/builtin_candidates.hpp"
#include "xposcheck/harness/envelope.hpp"
#include "xposcheck/harness/sweep.hpp"
#include "xposcheck/reports/report_files.hpp"
#include "xposcheck/reports/summary.hpp"

namespace xposcheck::cli {
namespace {

std::vector<std::unique_ptr<Candidate>> build_candidates(const SweepCommandOptions& o) {
  std::vector<std::unique_ptr<Candidate>> list;
  for (const std::string& name : o.candidates) {
    auto c = make_builtin(name);
    if (!c) {
      throw CLI::ValidationError("--candidate", fmt::format("unknown candidate '{}' (see "
                                                            "`xposcheck candidates`)", name));
    }
    list.push_back(std::move(c));
  }
  for (auto& c : o.external_candidates()) list.push_back(std::move(c));
  if (list.empty()) {
    throw CLI::ValidationError("--candidate", "name at least one candidate (--candidate, "
                                              "--candidate-cmd or --candidate-lib)");
  }
  std::set<std::string> names;
  for (const auto& c : list) {
    if (!names.insert(c->name()).second)
      throw CLI::ValidationError("--candidate-name", fmt::format("two candidates named '{}'", c->name()));
  }
  return list;
}

// A progress line on a terminal, plain log lines otherwise.
ProgressCallback progress_printer(bool quiet) {
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  return [tty, quiet](const Progress& p) {
    if (quiet) return;
    const double eta = p.done ? p.elapsed_s * static_cast<double>(p.total - p.done) /
                                    static_cast<double>(p.done) : 0.0;
    if (tty) {
      fmt::print(stderr, "\r[{}/{}] failures {}  elapsed {:.0f}s  ETA {:.0f}s   ", p.done, p.total,
                 p.failures, p.elapsed_s, eta);
      if (p.done == p.total) fmt::print(stderr, "\n");
    } else if (p.last) {
      fmt::print(stderr, "[{}/{}] {:<12} {} {} {}\n", p.done, p.total,
                 outcome_name(p.last->outcome), p.last->candidate, p.last->case_id,
                 dtype_name(p.last->dtype));
    }
  };
}

int run_sweep_command(const SweepCommandOptions& o) {
  const Grid grid = load_grid(o.grid);
  auto candidates = build_candidates(o);
  SweepOptions options = o.sweep_options();
  const std::optional<ShardSource> shard = resolve_shard(o.shard);
  if (shard) options.shard = shard->shard;
  const DriftGate drift_gate = load_drift_gate(o.baseline, o.drift_factor, o.drift_floor);
  const std::vector<DType>& dtypes = options.dtypes.empty() ? grid.dtypes : options.dtypes;
  std::vector<std::string> names;
  for (const auto& c : candidates) names.push_back(c->name());
  std::vector<std::string> case_order;
  for (const GridCase& gc : grid.cases) case_order.push_back(gc.id);

  RunInfo run = make_run_info(grid, names, dtypes, options.tolerance);
  if (shard) run.shard = shard_name(shard->shard);
  ResultsStore store(o.out, run, case_order);
  if (o.resume) store.resume();
  if (!o.quiet) {
    fmt::print(stderr, "sweep {}: {} cases x {} dtypes x {} candidates{}\n", grid.name,
               grid.cases.size(), dtypes.size(), candidates.size(),
               store.size() ? fmt::format(" ({} results resumed)", store.size()) : "");
    if (shard) fmt::print(stderr, "shard {} (from {})\n", run.shard, shard->origin);
  }
  run_sweep(grid, candidates, options, store, progress_printer(o.quiet));
  Results results = store.finish();
  const std::optional<DriftReport> drift = apply_drift_gate(drift_gate, results, o.out);

  const GateVerdict verdict = gate_verdict(results, o.gate, drift ? &*drift : nullptr);
  SummaryTable summary;
  Reporter* reporters[] = {&summary};
  report(results, reporters, verdict);
  print_summary(std::cout, summary);
  print_envelopes(std::cout, compute_envelopes(results));
  if (drift) std::cout << "baseline: " << o.baseline << '\n' << format_drift(results, *drift);
  for (const auto& c : candidates) {
    if (const auto statistics = c->statistics()) fmt::print("external: {}\n", *statistics);
  }
  fmt::print("results: {}\n", o.out);
  write_report_files(results, {o.report, o.junit, o.summary}, verdict);
  for (const std::string* file : {&o.report, &o.junit, &o.summary}) {
    if (!file->empty()) fmt::print("report: {}\n", *file);
  }
  fmt::print("gate: {} ({} failing of {}{})\n", verdict.failed() ? "FAIL" : "PASS", verdict.failing,
             verdict.total, verdict.envelope_shrank ? "; an envelope shrank" : "");
  return verdict.failed() ? kExitGateFailed : kExitOk;
}

}  // namespace

void setup_sweep(CLI::App& app, ExitStatus& status) {
  auto options = std::make_shared<SweepCommandOptions>();
  auto* sub = app.add_subcommand("sweep", "Run candidates over a case grid and gate on the outcomes");
  add_sweep_options(*sub, *options);
  sub->callback([options, &status] { status.code = run_sweep_command(*options); });
}

}  // namespace xposcheck::cli
