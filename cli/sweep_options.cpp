#include "sweep_options.hpp"

#include "xposcheck/harness/candidate_text.hpp"
#include "numeric_flags.hpp"

#include <fmt/format.h>

#include "xposcheck/harness/builtin_candidates.hpp"
#include "xposcheck/harness/horizon.hpp"
#include "xposcheck/harness/plugin_candidate.hpp"
#include "xposcheck/harness/subprocess_candidate.hpp"

namespace xposcheck::cli {

void add_sweep_options(CLI::App& sub, SweepCommandOptions& o) {
  sub.add_option("--grid", o.grid, "Case grid (TOML), e.g. cases/default.toml")
      ->required()->check(CLI::ExistingFile);
  sub.add_option("--candidate", o.candidates, "Built-in candidate name(s), comma separated")
      ->delimiter(',');
  sub.add_option("--dtypes", o.dtypes, "Dtypes to run (default: the grid's): fp32,bf16,fp16")
      ->delimiter(',');
  sub.add_option("--passes", o.passes,
                 "Passes to run (default: the grid's, else forward): forward,backward; backward "
                 "runs for the candidates that have it (docs/gradients.md)")
      ->delimiter(',');
  sub.add_option("--out", o.out, "Results file (JSON), written incrementally")->capture_default_str();
  sub.add_option("--jobs", o.jobs, "Threads the sweep may use, nested work included (default: every core)");
  sub.add_flag("--resume", o.resume, "Keep the results already in --out and run only the rest");
  CLI::Option* quiet = sub.add_flag("--quiet", o.quiet, "No progress output");
  sub.add_flag("--verbose", o.verbose, "A progress line for every record, not only the failing ones")
      ->excludes(quiet);
  sub.add_flag("--fail-on-out-of-range", o.gate.out_of_range_fails,
               "Count OUT_OF_RANGE (golden values beyond the dtype) as a gate failure");
  sub.add_option("--logit-rows", o.logit_rows,
                 "Most query rows whose logits are compared; long cases take fewer, to stay near "
                 "2^24 multiply-adds (0: only that budget)")->capture_default_str();
  sub.add_option("--blocks-above", o.blocks_above_mib,
                 "Judge a case in blocks of rows, in bounded memory, when its whole tensors would take "
                 "more than this many MiB: built-ins a block at a time, external candidates' files "
                 "written and read by blocks (docs/long-context.md); 0: every case that can be")
      ->check(FiniteRange(0, 1e12))->capture_default_str();
  sub.add_option("--accept-convention", o.accept_conventions,
                 "Accept records that differ from SPEC only by these conventions (origin, centre), "
                 "judged again in each convention's frame (see docs/diagnosis.md)")
      ->delimiter(',')->check(CLI::IsMember(known_conventions()));
  sub.add_option("--horizon", o.horizon,
                 "Relative error (of the pair magnitude) whose first crossing, moving out from "
                 "position 0, is the accuracy horizon: 2^-8, 2^-10, 0.001 (information, not a gate)")
      ->capture_default_str()
      ->check(CLI::Validator([](std::string& text) { return parse_threshold(text).error; }, "THRESHOLD"));
  auto* reports = "Reports (see docs/reports.md)";
  sub.add_option("--report", o.report, "HTML accuracy report (one self-contained file)")->group(reports);
  sub.add_option("--junit", o.junit, "JUnit XML for CI test dashboards")->group(reports);
  sub.add_option("--summary", o.summary, "Markdown summary (e.g. $GITHUB_STEP_SUMMARY)")->group(reports);
  auto* drift = "Baselines and shards (see docs/baselines.md, docs/sharding.md)";
  sub.add_option("--baseline", o.baseline, "Baseline file: PASS records whose errors grew become DRIFT")
      ->check(CLI::ExistingFile)->group(drift);
  sub.add_option("--drift-factor", o.drift_factor, "DRIFT when an error exceeds this factor x the baseline's...")
      ->check(FiniteRange(1.0, 1e12))->capture_default_str()->group(drift);
  sub.add_option("--drift-floor", o.drift_floor, "...and grew by more than this many ulps")
      ->check(FiniteRange(0))->capture_default_str()->group(drift);
  sub.add_option("--shard", o.shard, "Run shard K of N (1-based, e.g. 2/4) or 'none'; default: "
                 "XPOSCHECK_SHARD, JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID")->group(drift);
  auto* ext = "External candidates (see docs/protocol.md)";
  sub.add_option("--candidate-cmd", o.candidate_cmds,
                 "Command run once per batch with the work directory appended (repeatable)")
      ->allow_extra_args(false)->group(ext);
  sub.add_option("--candidate-name", o.candidate_names,
                 "Name of the --candidate-cmd of the same rank (repeatable)")
      ->allow_extra_args(false)->group(ext);
  sub.add_option("--candidate-lib", o.candidate_libs, "Native candidate library (repeatable)")
      ->allow_extra_args(false)->check(CLI::ExistingFile)->group(ext);
  sub.add_option("--batch-size", o.batch_size, "Cases per batch of an external candidate")
      ->check(CLI::Range(1, 1000000))->capture_default_str()->group(ext);
  sub.add_option("--case-timeout", o.case_timeout, "Seconds allowed per case, from the end of the previous one")
      ->check(FiniteRange(0.001, 1e7))->capture_default_str()->group(ext);
  sub.add_option("--batch-timeout", o.batch_timeout, "At most this many seconds for a batch's processes together")
      ->check(FiniteRange(0.001, 1e7))->capture_default_str()->group(ext);
  sub.add_option("--bf16-inputs", o.bf16_inputs, "How bf16 inputs are written: bits or float32")
      ->check(CLI::IsMember({"bits", "float32"}))->capture_default_str()->group(ext);
  sub.add_flag("--keep-work-dirs", o.keep_work_dirs, "Leave the batches' work directories in $TMPDIR")
      ->group(ext);
  auto* tol = "Tolerance (overrides the grid's; see docs/tolerances.md)";
  sub.add_option("--tolerance-rule", o.rule, "position-aware or relative")
      ->check(CLI::IsMember({"position-aware", "relative"}))->group(tol);
  sub.add_option("--base-ulps", o.base_ulps, "Position-independent allowance (dtype ulps)")
      ->check(FiniteRange(0))->group(tol);
  sub.add_option("--angle-factor", o.angle_factor, "Multiples of |phi| * 2^-24")
      ->check(FiniteRange(0))->group(tol);
  sub.add_option("--scale-factor", o.scale_factor, "Multiples of |p - c| / B * 2^-24 (the XPOS exponent)")
      ->check(FiniteRange(0))->group(tol);
  sub.add_option("--logits-factor", o.logits_factor, "Logits allowance factor")
      ->check(FiniteRange(0))->group(tol);
  sub.add_option("--logits-bias", o.logits_bias,
                 "Systematic relative logit error allowed, in units of the dtype's unit roundoff")
      ->check(FiniteRange(0))->group(tol);
  sub.add_option("--relative-k", o.relative_k, "Relative rule: k times the fp32-angles error")
      ->check(FinitePositive())->group(tol);
  sub.add_option("--relative-floor", o.relative_floor, "Relative rule: floor in dtype ulps")
      ->check(FiniteRange(0))->group(tol);
}

double SweepCommandOptions::horizon_threshold() const {
  const ParsedThreshold t = parse_threshold(horizon);
  if (!t.value) throw CLI::ValidationError("--horizon", t.error);
  return *t.value;
}

SweepOptions SweepCommandOptions::sweep_options() const {
  SweepOptions s;
  for (const std::string& name : dtypes) {
    const auto t = parse_dtype(name);
    if (!t) throw CLI::ValidationError("--dtypes", fmt::format("unknown dtype '{}' (fp32, bf16, fp16)", name));
    if (std::find(s.dtypes.begin(), s.dtypes.end(), *t) == s.dtypes.end()) s.dtypes.push_back(*t);
  }
  for (const std::string& name : passes) {
    const auto p = parse_pass(name);
    if (!p) throw CLI::ValidationError("--passes", fmt::format("unknown pass '{}' (forward, backward)", name));
    if (std::find(s.passes.begin(), s.passes.end(), *p) == s.passes.end()) s.passes.push_back(*p);
  }
  s.jobs = jobs;
  s.max_logit_rows = logit_rows;
  s.block_above_bytes = blocks_above_mib * kMiB;
  s.diagnosis.accept_conventions = accept_conventions;
  s.yardstick = [] { return make_builtin("fp32-angles"); };
  ToleranceSpec& spec = s.tolerance.all;
  if (!rule.empty()) spec.rule = parse_rule(rule);
  spec.base_ulps = base_ulps;
  spec.angle_factor = angle_factor;
  spec.scale_factor = scale_factor;
  spec.logits_factor = logits_factor;
  spec.logits_bias = logits_bias;
  spec.relative_k = relative_k;
  spec.relative_floor_ulps = relative_floor;
  return s;
}

std::vector<std::unique_ptr<Candidate>> SweepCommandOptions::external_candidates() const {
  if (candidate_names.size() > candidate_cmds.size()) {
    throw CLI::ValidationError("--candidate-name", fmt::format("{} names for {} --candidate-cmd",
                                                               candidate_names.size(), candidate_cmds.size()));
  }
  SubprocessOptions base;
  base.batch_size = batch_size;
  base.case_timeout_s = case_timeout;
  base.batch_timeout_s = batch_timeout;
  base.bf16_inputs = bf16_inputs == "float32" ? Bf16Encoding::float32 : Bf16Encoding::bits;
  base.keep_work_dirs = keep_work_dirs;
  std::vector<std::unique_ptr<Candidate>> list;
  for (std::size_t i = 0; i < candidate_cmds.size(); ++i) {
    SubprocessOptions o = base;
    o.name = i < candidate_names.size() ? candidate_names[i] : default_command_name(candidate_cmds[i]);
    // The name reaches file names, report rows and the terminal.
    const char* flag = i < candidate_names.size() ? "--candidate-name" : "--candidate-cmd";
    try {
      check_candidate_name(o.name, flag);
    } catch (const std::invalid_argument& e) {
      throw CLI::ValidationError(std::string(e.what()));
    }
    o.description = "command: " + candidate_cmds[i];
    o.argv = shell_command(candidate_cmds[i]);
    list.push_back(std::make_unique<SubprocessCandidate>(std::move(o)));
  }
  for (const std::string& lib : candidate_libs) list.push_back(make_plugin_candidate(lib, base));
  return list;
}

}  // namespace xposcheck::cli
