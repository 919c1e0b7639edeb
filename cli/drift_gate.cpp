#include "drift_gate.hpp"

#include <CLI/CLI.hpp>

namespace xposcheck::cli {

DriftGate load_drift_gate(const std::string& file, double factor, double floor_ulps) {
  DriftGate gate{file, std::nullopt, DriftOptions{factor, floor_ulps, {}}};
  if (!file.empty()) gate.baseline = read_baseline(file);
  return gate;
}

std::optional<DriftReport> apply_drift_gate(const DriftGate& gate, Results& results, const std::string& out) {
  if (!gate.baseline) return std::nullopt;
  DriftReport report = apply_baseline(results, *gate.baseline, gate.options);
  write_results(out, results);
  return report;
}

std::optional<ShardSource> resolve_shard(const std::string& flag) {
  if (flag == "none") return std::nullopt;
  try {
    if (!flag.empty()) return ShardSource{parse_shard(flag), "--shard " + flag};
    return shard_from_environment();
  } catch (const ShardError& e) {
    throw CLI::ValidationError(flag.empty() ? "shard" : "--shard", e.what());
  }
}

}  // namespace xposcheck::cli
