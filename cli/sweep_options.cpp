#include "sweep_options.hpp"

#include <fmt/format.h>

namespace xposcheck::cli {

void add_sweep_options(CLI::App& sub, SweepCommandOptions& o) {
  sub.add_option("--grid", o.grid, "Case grid (TOML), e.g. cases/default.toml")
      ->required()->check(CLI::ExistingFile);
  sub.add_option("--candidate", o.candidates, "Built-in candidate name(s), comma separated")
      ->delimiter(',');
  sub.add_option("--dtypes", o.dtypes, "Dtypes to run (default: the grid's): fp32,bf16,fp16")
      ->delimiter(',');
  sub.add_option("--out", o.out, "Results file (JSON), written incrementally")->capture_default_str();
  sub.add_option("--jobs", o.jobs, "Worker threads (default: every core)");
  sub.add_flag("--resume", o.resume, "Keep the results already in --out and run only the rest");
  sub.add_flag("--quiet", o.quiet, "No progress output");
  sub.add_flag("--fail-on-out-of-range", o.out_of_range_fails,
               "Count OUT_OF_RANGE (golden values beyond the dtype) as a gate failure");
  sub.add_option("--logit-rows", o.logit_rows,
                 "Query rows whose logits are compared in long cases (0: all)")->capture_default_str();
  sub.add_option("--accept-convention", o.accept_conventions,
                 "Judge candidates that differ only by this convention on their logits: centre "
                 "(see docs/diagnosis.md)")
      ->delimiter(',')->check(CLI::IsMember(known_conventions()));
  auto* reports = "Reports (see docs/reports.md)";
  sub.add_option("--report", o.report, "HTML accuracy report (one self-contained file)")->group(reports);
  sub.add_option("--junit", o.junit, "JUnit XML for CI test dashboards")->group(reports);
  sub.add_option("--summary", o.summary, "Markdown summary (e.g. $GITHUB_STEP_SUMMARY)")->group(reports);
  auto* tol = "Tolerance (overrides the grid's; see docs/tolerances.md)";
  sub.add_option("--tolerance-rule", o.rule, "position-aware or relative")
      ->check(CLI::IsMember({"position-aware", "relative"}))->group(tol);
  sub.add_option("--base-ulps", o.base_ulps, "Position-independent allowance (dtype ulps)")
      ->check(CLI::NonNegativeNumber)->group(tol);
  sub.add_option("--angle-factor", o.angle_factor, "Multiples of |phi| * 2^-24")
      ->check(CLI::NonNegativeNumber)->group(tol);
  sub.add_option("--scale-factor", o.scale_factor, "Multiples of |ln sigma| * 2^-24")
      ->check(CLI::NonNegativeNumber)->group(tol);
  sub.add_option("--logits-factor", o.logits_factor, "Logits allowance factor")
      ->check(CLI::NonNegativeNumber)->group(tol);
  sub.add_option("--relative-k", o.relative_k, "Relative rule: k times the fp32-angles error")
      ->check(CLI::PositiveNumber)->group(tol);
  sub.add_option("--relative-floor", o.relative_floor, "Relative rule: floor in dtype ulps")
      ->check(CLI::NonNegativeNumber)->group(tol);
}

SweepOptions SweepCommandOptions::sweep_options() const {
  SweepOptions s;
  for (const std::string& name : dtypes) {
    const auto t = parse_dtype(name);
    if (!t) throw CLI::ValidationError("--dtypes", fmt::format("unknown dtype '{}' (fp32, bf16, fp16)", name));
    if (std::find(s.dtypes.begin(), s.dtypes.end(), *t) == s.dtypes.end()) s.dtypes.push_back(*t);
  }
  s.jobs = jobs;
  s.max_logit_rows = logit_rows;
  s.diagnosis.accept_conventions = accept_conventions;
  ToleranceSpec& spec = s.tolerance.all;
  if (!rule.empty()) spec.rule = parse_rule(rule);
  spec.base_ulps = base_ulps;
  spec.angle_factor = angle_factor;
  spec.scale_factor = scale_factor;
  spec.logits_factor = logits_factor;
  spec.relative_k = relative_k;
  spec.relative_floor_ulps = relative_floor;
  return s;
}

}  // namespace xposcheck::cli
