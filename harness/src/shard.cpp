#include "xposcheck/harness/shard.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <fmt/format.h>
#include <numeric>

namespace xposcheck {
namespace {

// A whole decimal number, nothing else (no sign, no spaces, no suffix).
std::optional<long long> parse_integer(std::string_view text) {
  long long value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

long long integer_variable(const EnvLookup& env, const char* name, long long fallback) {
  const std::optional<std::string> text = env(name);
  if (!text) return fallback;
  const auto value = parse_integer(*text);
  if (!value) throw ShardError(fmt::format("environment variable {}='{}' is not an integer", name, *text));
  return *value;
}

Shard checked(long long index, long long count, const std::string& origin) {
  if (count < 1) throw ShardError(fmt::format("{}: shard count {} must be at least 1", origin, count));
  if (index < 1 || index > count) {
    throw ShardError(fmt::format("{}: shard {} is outside 1..{}", origin, index, count));
  }
  return {static_cast<std::size_t>(index), static_cast<std::size_t>(count)};
}

std::optional<ShardSource> from_kubernetes(const EnvLookup& env) {
  const auto index = env("JOB_COMPLETION_INDEX");
  const auto count = env("XPOSCHECK_SHARD_COUNT");
  if (!count) return std::nullopt;  // an indexed Job that does not shard xposcheck
  if (!index) {
    throw ShardError("XPOSCHECK_SHARD_COUNT is set but JOB_COMPLETION_INDEX is not (set "
                     "XPOSCHECK_SHARD=K/N instead outside a Kubernetes indexed Job)");
  }
  const long long k = integer_variable(env, "JOB_COMPLETION_INDEX", 0) + 1;
  const long long n = integer_variable(env, "XPOSCHECK_SHARD_COUNT", 0);
  const std::string origin = fmt::format("JOB_COMPLETION_INDEX={} with XPOSCHECK_SHARD_COUNT={}", *index, *count);
  return ShardSource{checked(k, n, origin), origin};
}

std::optional<ShardSource> from_slurm(const EnvLookup& env) {
  const auto id = env("SLURM_ARRAY_TASK_ID");
  if (!id) return std::nullopt;
  if (!env("SLURM_ARRAY_TASK_COUNT")) {
    throw ShardError(fmt::format("SLURM_ARRAY_TASK_ID={} is set but SLURM_ARRAY_TASK_COUNT is not", *id));
  }
  const long long task = integer_variable(env, "SLURM_ARRAY_TASK_ID", 0);
  const long long count = integer_variable(env, "SLURM_ARRAY_TASK_COUNT", 0);
  const long long min = integer_variable(env, "SLURM_ARRAY_TASK_MIN", 0);
  const long long step = integer_variable(env, "SLURM_ARRAY_TASK_STEP", 1);
  const std::string origin = fmt::format("SLURM_ARRAY_TASK_ID={} (min {}, step {}, count {})", task, min,
                                         step, count);
  if (step < 1 || (task - min) % step != 0) {
    throw ShardError(fmt::format("{}: the task id is not min + a multiple of the step", origin));
  }
  return ShardSource{checked((task - min) / step + 1, count, origin), origin};
}

}  // namespace

std::string shard_name(const Shard& s) { return fmt::format("{}/{}", s.index, s.count); }

Shard parse_shard(std::string_view text) {
  const std::size_t slash = text.find('/');
  const auto k = parse_integer(text.substr(0, slash));
  const auto n = slash == std::string_view::npos ? std::nullopt : parse_integer(text.substr(slash + 1));
  if (!k || !n) {
    throw ShardError(fmt::format("shard '{}' is not K/N (e.g. 2/5: the second of five shards, "
                                 "counted from 1)", text));
  }
  return checked(*k, *n, fmt::format("shard '{}'", text));
}

std::optional<std::string> process_env(const char* name) {
  const char* value = std::getenv(name);
  if (!value) return std::nullopt;
  return std::string(value);
}

std::optional<ShardSource> shard_from_environment(const EnvLookup& env) {
  if (const auto text = env("XPOSCHECK_SHARD")) {
    try {
      return ShardSource{parse_shard(*text), fmt::format("XPOSCHECK_SHARD={}", *text)};
    } catch (const ShardError& e) {
      throw ShardError(fmt::format("environment variable XPOSCHECK_SHARD: {}", e.what()));
    }
  }
  if (auto s = from_kubernetes(env)) return s;
  return from_slurm(env);
}

std::vector<std::size_t> assign_shards(const std::vector<double>& costs, std::size_t count) {
  std::vector<std::size_t> order(costs.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return costs[a] > costs[b]; });
  std::vector<double> load(std::max<std::size_t>(count, 1), 0.0);
  std::vector<std::size_t> owner(costs.size(), 0);
  for (std::size_t unit : order) {
    const std::size_t lightest = static_cast<std::size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    owner[unit] = lightest;
    load[lightest] += costs[unit];
  }
  return owner;
}

std::vector<ShardUnit> grid_units(const Grid& grid, const std::vector<DType>& dtypes) {
  std::vector<ShardUnit> units;
  for (const GridCase& gc : grid.cases) {
    for (DType t : dtypes) units.push_back({&gc, t});
  }
  return units;
}

double unit_cost(const ShardUnit& u) { return estimated_cost(u.gc->params); }

std::vector<ShardUnit> shard_units(const Grid& grid, const std::vector<DType>& dtypes, const Shard& s) {
  const std::vector<ShardUnit> all = grid_units(grid, dtypes);
  std::vector<double> costs;
  for (const ShardUnit& u : all) costs.push_back(unit_cost(u));
  const std::vector<std::size_t> owner = assign_shards(costs, s.count);
  std::vector<ShardUnit> mine;
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (owner[i] == s.index - 1) mine.push_back(all[i]);
  }
  return mine;
}

}  // namespace xposcheck
