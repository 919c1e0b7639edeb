#pragma once
// Sharded sweeps (docs/sharding.md): shard K of N (1-based) runs a deterministic,
// cost-balanced 1/N of the grid's (case, dtype) units; every candidate of a unit runs
// in the same shard, so shards merge into exactly the unsharded results.
#include <cstddef>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "xposcheck/cases/grid.hpp"

namespace xposcheck {

struct Shard {
  std::size_t index = 1;  // K: 1..count
  std::size_t count = 1;  // N

  bool operator==(const Shard&) const = default;
};

// A shard specification or environment variable that cannot be used; what() names it.
struct ShardError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

std::string shard_name(const Shard& s);       // "K/N"
Shard parse_shard(std::string_view text);     // "K/N", 1 <= K <= N; throws ShardError

// Where a shard chosen from the environment came from, for the log line.
struct ShardSource {
  Shard shard;
  std::string origin;  // e.g. "SLURM_ARRAY_TASK_ID=3 (min 1, count 4)"
};

using EnvLookup = std::function<std::optional<std::string>(const char* name)>;
std::optional<std::string> process_env(const char* name);  // std::getenv

// In this order: XPOSCHECK_SHARD=K/N; JOB_COMPLETION_INDEX (Kubernetes indexed Job,
// 0-based) with XPOSCHECK_SHARD_COUNT; SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_COUNT,
// SLURM_ARRAY_TASK_MIN (default 0) and SLURM_ARRAY_TASK_STEP (default 1). None set:
// nullopt. Set but unusable: ShardError naming the variable.
std::optional<ShardSource> shard_from_environment(const EnvLookup& env = process_env);

// Greedy longest-processing-time assignment: units by cost, descending (ties by
// index), each to the least-loaded shard (ties to the lowest). Returns the 0-based
// shard of every unit. Deterministic: every shard process computes the same answer.
std::vector<std::size_t> assign_shards(const std::vector<double>& costs, std::size_t count);

struct ShardUnit {
  const GridCase* gc;
  DType dtype;
};

// The (case, dtype) units of the grid in sweep order, and those that shard s runs.
std::vector<ShardUnit> grid_units(const Grid& grid, const std::vector<DType>& dtypes);
std::vector<ShardUnit> shard_units(const Grid& grid, const std::vector<DType>& dtypes, const Shard& s);
// The estimated cost of each unit: the balance measure.
double unit_cost(const ShardUnit& u);

}  // namespace xposcheck
