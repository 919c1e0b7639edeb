#pragma once
// The sweep subcommand's options (shared with the commands that re-run sweeps).
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "xposcheck/harness/sweep.hpp"

namespace xposcheck::cli {

struct SweepCommandOptions {
  std::string grid;
  std::vector<std::string> candidates;
  std::vector<std::string> dtypes;
  std::string out = "results.json";
  unsigned jobs = 0;
  bool resume = false;
  bool quiet = false;
  bool out_of_range_fails = false;
  std::size_t logit_rows = 128;
  std::vector<std::string> accept_conventions;  // judged on logits: see docs/diagnosis.md
  std::string report, junit, summary;  // written after the summary from the same results
  std::string rule;
  std::optional<double> base_ulps, angle_factor, scale_factor, logits_factor, relative_k,
      relative_floor;

  SweepOptions sweep_options() const;
};

void add_sweep_options(CLI::App& sub, SweepCommandOptions& o);

}  // namespace xposcheck::cli
