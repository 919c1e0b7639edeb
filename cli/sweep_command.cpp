// xposcheck sweep: every (candidate, case, dtype) of a grid, the summary and the gate.
#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fmt/format.h>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>
#include <unistd.h>

#include "commands.hpp"
#include "drift_gate.hpp"
#include "file_flags.hpp"
#include "run_info.hpp"
#include "sweep_options.hpp"
#include "sweep_progress.hpp"
#include "terminal_print.hpp"
#include "xposcheck/harness/builtin_candidates.hpp"
#include "xposcheck/harness/envelope.hpp"
#include "xposcheck/harness/horizon.hpp"
#include "xposcheck/harness/limits.hpp"
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
  // Blame the flag that named the second one: built-ins come first in the list.
  std::set<std::string> names;
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (names.insert(list[i]->name()).second) continue;
    const char* flag = i < o.candidates.size() ? "--candidate"
                       : i < o.candidates.size() + o.candidate_cmds.size() ? "--candidate-name" : "--candidate-lib";
    throw CLI::ValidationError(flag, fmt::format("two candidates named '{}'", list[i]->name()));
  }
  return list;
}

void check_sweep_files(const SweepCommandOptions& o) {
  std::vector<FileFlag> files = {{"--grid", o.grid}, {"--baseline", o.baseline}, {"--out", o.out, true},
                                 {"--report", o.report, true}, {"--junit", o.junit, true},
                                 {"--summary", o.summary, true}};
  for (const std::string& lib : o.candidate_libs) files.push_back({"--candidate-lib", lib});
  check_files_distinct(files);
}

// External candidates work in $TMPDIR: a missing one is a usage error found before the
// run, not a CRASH of every candidate.
void check_work_dir_root(const SweepCommandOptions& o) {
  if (o.candidate_cmds.empty() && o.candidate_libs.empty()) return;
  std::error_code ec;
  const std::filesystem::path root = std::filesystem::temp_directory_path(ec);
  if (ec || ::access(root.c_str(), W_OK | X_OK) != 0) {
    const char* env = std::getenv("TMPDIR");
    throw CLI::ValidationError("TMPDIR", fmt::format("{} is not a writable directory; external candidates work "
                                                     "there", env ? env : root.string()));
  }
}

// Refused before anything runs: a case that cannot fit in memory, a shard count
// larger than the units to share (assigning them would itself take gigabytes).
void check_run_size(const Grid& grid, const std::vector<std::unique_ptr<Candidate>>& candidates,
                    const std::vector<DType>& dtypes, const SweepOptions& options) {
  check_sweep_memory(grid, candidates, options);
  const std::size_t units = grid.cases.size() * dtypes.size();
  if (options.shard && options.shard->count > units) {
    throw CLI::ValidationError("--shard", fmt::format("{} shards for {} units ({} cases x {} dtypes): at most one "
                                                      "shard per unit", options.shard->count, units,
                                                      grid.cases.size(), dtypes.size()));
  }
}

// Every case of a sweep allocates tensors of megabytes and frees them again. glibc
// hands such blocks back to the kernel (munmap, heap trimming) and the next case
// faults them in afresh, a page at a time, each page zeroed by the kernel first: on
// the default grid over 800,000 page faults and a fifth of the harness's CPU. Blocks
// up to 32 MiB (glibc's ceiling) now stay in the heap for the next case. Not for
// `golden`, whose streamed blocks recycle their own storage.
void reuse_freed_memory() {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

int run_sweep_command(const SweepCommandOptions& o) {
  reuse_freed_memory();
  check_sweep_files(o);
  check_work_dir_root(o);
  const OutputLock lock(o.out);
  const Grid grid = load_grid(o.grid);
  auto candidates = build_candidates(o);
  SweepOptions options = o.sweep_options();
  const std::optional<ShardSource> shard = resolve_shard(o.shard);
  if (shard) options.shard = shard->shard;
  const DriftGate drift_gate = load_drift_gate(o.baseline, o.drift_factor, o.drift_floor);
  const std::vector<DType>& dtypes = options.dtypes.empty() ? grid.dtypes : options.dtypes;
  check_run_size(grid, candidates, dtypes, options);
  std::vector<std::string> names;
  for (const auto& c : candidates) names.push_back(c->name());
  std::vector<std::string> case_order;
  for (const GridCase& gc : grid.cases) case_order.push_back(gc.id);

  RunInfo run = make_run_info(grid, names, dtypes, options.tolerance);
  if (shard) run.shard = shard_name(shard->shard);
  run.logit_rows = options.max_logit_rows;
  run.accept_conventions = options.diagnosis.accept_conventions;
  // External candidates follow the built-ins, commands before libraries.
  const std::size_t first_external = o.candidates.size();
  for (std::size_t i = 0; i < o.candidate_cmds.size(); ++i)
    run.candidate_code[names[first_external + i]] = candidate_code(o.candidate_cmds[i]);
  for (std::size_t i = 0; i < o.candidate_libs.size(); ++i)
    run.candidate_code[names[first_external + o.candidate_cmds.size() + i]] = candidate_code(o.candidate_libs[i]);
  run.horizon_threshold = o.horizon_threshold();
  ResultsStore store(o.out, run, case_order);
  if (o.resume) store.resume();
  if (!o.quiet) {
    const std::vector<Pass>& passes = options.passes.empty() ? grid.passes : options.passes;
    std::string pass_list;
    for (Pass p : passes) pass_list.append(pass_list.empty() ? "" : ",").append(pass_name(p));
    print_text(stderr, "sweep {}: {} cases x {} dtypes x {} candidates{}{}\n", grid.name,
               grid.cases.size(), dtypes.size(), candidates.size(),
               passes == std::vector<Pass>{Pass::forward} ? "" : fmt::format(" (passes: {})", pass_list),
               store.size() ? fmt::format(" ({} results resumed)", store.size()) : "");
    if (shard) fmt::print(stderr, "shard {} (from {})\n", run.shard, shard->origin);
  }
  ProgressPrinter progress(stderr_progress(o.quiet     ? ProgressStyle::quiet
                                           : o.verbose ? ProgressStyle::verbose
                                                       : ProgressStyle::normal));
  run_sweep(grid, candidates, options, store, progress_callback(progress));
  progress.finish();
  Results results = store.finish();
  const std::optional<DriftReport> drift = apply_drift_gate(drift_gate, results, o.out);

  const GateVerdict verdict = gate_verdict(results, o.gate, drift ? &*drift : nullptr);
  SummaryTable summary;
  Reporter* reporters[] = {&summary};
  report(results, reporters, verdict);
  std::ostringstream table;  // candidate names and case ids: escaped for the terminal
  print_summary(table, summary);
  print_envelopes(table, compute_envelopes(results));
  print_horizons(table, compute_horizons(results));
  if (drift) table << "baseline: " << o.baseline << '\n' << format_drift(results, *drift);
  std::cout << terminal_text(table.str());
  for (const auto& c : candidates) {
    if (const auto statistics = c->statistics()) print_text("external: {}\n", *statistics);
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
