#pragma once
// The sweep subcommand's options (shared with the commands that re-run sweeps).
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "xposcheck/harness/horizon.hpp"
#include "xposcheck/harness/sweep.hpp"

namespace xposcheck::cli {

struct SweepCommandOptions {
  std::string grid;
  std::vector<std::string> candidates;
  std::vector<std::string> dtypes;
  std::vector<std::string> passes;
  std::string out = "results.json";
  unsigned jobs = 0;
  bool resume = false;
  bool quiet = false, verbose = false;
  GatePolicy gate;
  std::size_t logit_rows = kSweepLogitRows;
  static constexpr double kMiB = 1024.0 * 1024.0;
  double blocks_above_mib = kBlockAboveBytes / kMiB;
  std::vector<std::string> accept_conventions;  // judged again in their frames: docs/diagnosis.md
  std::string horizon = threshold_text(kHorizonThreshold);  // the accuracy horizon's threshold
  std::string report, junit, summary;  // written after the summary from the same results
  std::string baseline;                // DRIFT versus this baseline (docs/baselines.md)
  double drift_factor = 2.0, drift_floor = 1.0;
  std::string shard;                   // "K/N", "none", or "": from the environment
  std::string rule;
  // External candidates (docs/protocol.md): commands with their names, native plugins.
  std::vector<std::string> candidate_cmds, candidate_names, candidate_libs;
  std::size_t batch_size = 32;
  double case_timeout = 60, batch_timeout = 1800;
  std::string bf16_inputs = "bits";
  bool keep_work_dirs = false;
  std::optional<double> base_ulps, angle_factor, scale_factor, logits_factor, logits_bias,
      relative_k, relative_floor;

  SweepOptions sweep_options() const;
  double horizon_threshold() const;
  // The --candidate-cmd and --candidate-lib candidates, in that order.
  std::vector<std::unique_ptr<Candidate>> external_candidates() const;
};

void add_sweep_options(CLI::App& sub, SweepCommandOptions& o);

}  // namespace xposcheck::cli
