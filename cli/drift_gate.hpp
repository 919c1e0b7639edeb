#pragma once
// The sweep's baseline and shard options: loading the baseline before the sweep (a
// bad file fails in seconds, not after the run), applying it to the stored results,
// and choosing the shard from --shard or the environment.
#include <optional>
#include <string>

#include "xposcheck/harness/baseline.hpp"
#include "xposcheck/harness/shard.hpp"

namespace xposcheck::cli {

struct DriftGate {
  std::string file;                // empty: no baseline
  std::optional<Baseline> baseline;
  DriftOptions options;
};

DriftGate load_drift_gate(const std::string& file, double factor, double floor_ulps);

// Compares the results with the baseline, stores the drift evidence in the results
// file and returns the report; nullopt without a baseline.
std::optional<DriftReport> apply_drift_gate(const DriftGate& gate, Results& results, const std::string& out);

// --shard K/N wins, --shard none turns sharding off, otherwise the environment
// (shard_from_environment). Throws CLI::ValidationError naming the flag or variable.
std::optional<ShardSource> resolve_shard(const std::string& flag);

}  // namespace xposcheck::cli
