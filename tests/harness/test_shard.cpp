// Sharded sweeps: the union of the shards is exactly the unsharded sweep, shards are
// balanced by cost, merges refuse inputs that do not belong together, and the shard
// can come from CI's environment.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <numeric>

#include "drift_fixtures.hpp"
#include "xposcheck/harness/merge.hpp"
#include "xposcheck/harness/shard.hpp"

using namespace xposcheck;
using namespace xposcheck::testing;
using Catch::Matchers::Contains;

namespace {

const Grid& smoke() {
  static const Grid grid = shipped_grid("smoke.toml");
  return grid;
}

// Stateless candidates only: a stateful one (stale-cache) depends on call order.
const std::vector<std::string> kCandidates = {"fp32-angles", "native-dtype", "wrong-layout"};

const Results& unsharded() {
  static const Results r = sweep_results(smoke(), kCandidates, "unsharded");
  return r;
}

Results shard_run(std::size_t k, std::size_t n) {
  SweepOptions options;
  options.shard = Shard{k, n};
  return sweep_results(smoke(), kCandidates, "shard-" + std::to_string(k) + "-of-" + std::to_string(n), options);
}

// Sets environment variables for one test and restores them after it.
class Env {
 public:
  static constexpr const char* kNames[] = {"XPOSCHECK_SHARD",        "JOB_COMPLETION_INDEX",
                                           "XPOSCHECK_SHARD_COUNT",  "SLURM_ARRAY_TASK_ID",
                                           "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN",
                                           "SLURM_ARRAY_TASK_STEP"};
  Env() {
    for (const char* n : kNames) {
      if (const char* v = std::getenv(n)) saved_.emplace_back(n, v);
      ::unsetenv(n);
    }
  }
  ~Env() {
    for (const char* n : kNames) ::unsetenv(n);
    for (const auto& [n, v] : saved_) ::setenv(n.c_str(), v.c_str(), 1);
  }
  void set(const char* name, const char* value) { ::setenv(name, value, 1); }

 private:
  std::vector<std::pair<std::string, std::string>> saved_;
};

}  // namespace

TEST_CASE("shard specifications are K/N with 1 <= K <= N") {
  CHECK(parse_shard("1/1") == Shard{1, 1});
  CHECK(parse_shard("3/5") == Shard{3, 5});
  CHECK(shard_name(parse_shard("12/40")) == "12/40");
  CHECK_THROWS_WITH(parse_shard("0/3"), Contains("shard '0/3'") && Contains("outside 1..3"));
  CHECK_THROWS_WITH(parse_shard("4/3"), Contains("outside 1..3"));
  CHECK_THROWS_WITH(parse_shard("1/0"), Contains("at least 1"));
  CHECK_THROWS_WITH(parse_shard("-1/2"), Contains("outside 1..2"));
  for (const char* bad : {"", "3", "a/b", "1/2x", "+1/2", "1 /2", "/2", "1/"}) {
    INFO(bad);
    CHECK_THROWS_WITH(parse_shard(bad), Contains("is not K/N"));
  }
}

TEST_CASE("the union of N shards is exactly the unsharded sweep") {
  for (std::size_t n : {1u, 2u, 3u, 5u}) {
    std::vector<MergeInput> parts;
    std::size_t total = 0;
    for (std::size_t k = 1; k <= n; ++k) {
      Results part = shard_run(k, n);
      CHECK_FALSE(part.records.empty());
      total += part.records.size();
      // The sweep ran exactly the units shard_units names, every candidate of each.
      const auto units = shard_units(smoke(), smoke().dtypes, Shard{k, n});
      CHECK(part.records.size() == units.size() * kCandidates.size());
      parts.push_back({"shard" + std::to_string(k), std::move(part)});
    }
    INFO(n << " shards");
    CHECK(total == unsharded().records.size());  // disjoint
    const Results merged = merge_results(parts, case_order_of(smoke()));
    CHECK(merged.run.shard.empty());
    CHECK(first_difference(merged, unsharded()) == "");
  }
}

TEST_CASE("shards are balanced by estimated cost") {
  const auto all = grid_units(smoke(), smoke().dtypes);
  double total = 0, largest = 0;
  for (const ShardUnit& u : all) {
    total += unit_cost(u);
    largest = std::max(largest, unit_cost(u));
  }
  for (std::size_t n : {2u, 3u, 5u}) {
    std::vector<double> loads;
    for (std::size_t k = 1; k <= n; ++k) {
      double load = 0;
      for (const ShardUnit& u : shard_units(smoke(), smoke().dtypes, Shard{k, n})) load += unit_cost(u);
      loads.push_back(load);
    }
    const double heaviest = *std::max_element(loads.begin(), loads.end());
    const double lightest = *std::min_element(loads.begin(), loads.end());
    INFO(n << " shards: heaviest " << heaviest << ", lightest " << lightest << ", largest unit " << largest);
    CHECK(std::accumulate(loads.begin(), loads.end(), 0.0) == Approx(total));
    // Greedy LPT: no shard exceeds the mean by more than one unit.
    CHECK(heaviest <= total / static_cast<double>(n) + largest);
    CHECK(heaviest <= 1.25 * lightest);
  }
}

TEST_CASE("assign_shards is deterministic greedy LPT") {
  const std::vector<double> costs = {5, 1, 4, 4, 2, 3};
  const std::vector<std::size_t> owner = assign_shards(costs, 2);
  // 5 -> 0; 4 -> 1; 4 -> 1 (4 < 5); 3 -> 0 (5 < 8); 2 -> 0 (8 = 8: the lowest); 1 -> 1.
  CHECK(owner == std::vector<std::size_t>{0, 1, 1, 1, 0, 0});
  CHECK(assign_shards(costs, 2) == owner);
  CHECK(assign_shards(costs, 1) == std::vector<std::size_t>(6, 0));
  CHECK(assign_shards({}, 3).empty());
}

TEST_CASE("merge refuses shards that do not belong together") {
  const Results a = shard_run(1, 2), b = shard_run(2, 2);
  CHECK_NOTHROW(merge_results({{"a.json", a}, {"b.json", b}}));

  SECTION("different grids") {
    Results other = b;
    other.run.grid_fingerprint = "0123456789abcdef";
    CHECK_THROWS_WITH(merge_results({{"a.json", a}, {"b.json", other}}),
                      Contains("a.json and b.json differ in grid fingerprint"));
  }
  SECTION("different tolerances") {
    Results other = b;
    other.run.tolerance["fp16"].base_ulps = 5.0;
    CHECK_THROWS_WITH(merge_results({{"a.json", a}, {"b.json", other}}),
                      Contains("a.json and b.json differ in tolerance"));
  }
  SECTION("different tool versions or candidates") {
    Results version = b, candidates = b;
    version.run.tool_version = "9.9";
    candidates.run.candidates.pop_back();
    CHECK_THROWS_WITH(merge_results({{"a.json", a}, {"v.json", version}}), Contains("tool version"));
    CHECK_THROWS_WITH(merge_results({{"a.json", a}, {"c.json", candidates}}), Contains("differ in candidates"));
  }
  SECTION("a record twice with different content") {
    Results other = b;
    Record conflicting = a.records.front();
    conflicting.outcome = Outcome::tolerance;
    other.records.push_back(conflicting);
    CHECK_THROWS_WITH(merge_results({{"a.json", a}, {"b.json", other}}),
                      Contains("a.json and b.json both hold " + conflicting.key()) &&
                          Contains("(PASS vs TOLERANCE)"));
  }
  SECTION("the same record twice, timings aside, is fine") {
    Results other = b;
    Record again = a.records.front();
    again.timing.candidate_s += 1.0;
    other.records.push_back(again);
    CHECK(merge_results({{"a.json", a}, {"b.json", other}}).records.size() == unsharded().records.size());
  }
  SECTION("shards of different counts") {
    const Results third = shard_run(3, 3);
    CHECK_THROWS_WITH(merge_results({{"a.json", a}, {"t.json", third}}), Contains("different counts"));
  }
}

TEST_CASE("a merge of some shards says which it holds") {
  const Results merged = merge_results({{"1.json", shard_run(1, 3)}, {"3.json", shard_run(3, 3)}});
  CHECK(merged.run.shard == "1+3/3");
  const Results whole = merge_results({{"m.json", merged}, {"2.json", shard_run(2, 3)}}, case_order_of(smoke()));
  CHECK(whole.run.shard.empty());
  CHECK(first_difference(whole, unsharded()) == "");
}

TEST_CASE("the shard can come from CI environment variables") {
  Env env;
  CHECK_FALSE(shard_from_environment());

  SECTION("XPOSCHECK_SHARD") {
    env.set("XPOSCHECK_SHARD", "2/3");
    const auto s = shard_from_environment();
    REQUIRE(s);
    CHECK(s->shard == Shard{2, 3});
    CHECK(s->origin == "XPOSCHECK_SHARD=2/3");
    env.set("XPOSCHECK_SHARD", "4/3");
    CHECK_THROWS_WITH(shard_from_environment(), Contains("XPOSCHECK_SHARD") && Contains("outside 1..3"));
  }
  SECTION("a Kubernetes indexed Job counts from 0") {
    env.set("JOB_COMPLETION_INDEX", "0");
    CHECK_FALSE(shard_from_environment());  // no count: not meant for xposcheck
    env.set("XPOSCHECK_SHARD_COUNT", "4");
    CHECK(shard_from_environment()->shard == Shard{1, 4});
    env.set("JOB_COMPLETION_INDEX", "3");
    CHECK(shard_from_environment()->shard == Shard{4, 4});
    env.set("JOB_COMPLETION_INDEX", "4");
    CHECK_THROWS_WITH(shard_from_environment(), Contains("JOB_COMPLETION_INDEX=4") && Contains("outside 1..4"));
    env.set("JOB_COMPLETION_INDEX", "x");
    CHECK_THROWS_WITH(shard_from_environment(), Contains("JOB_COMPLETION_INDEX='x' is not an integer"));
  }
  SECTION("XPOSCHECK_SHARD_COUNT without an index is an error") {
    env.set("XPOSCHECK_SHARD_COUNT", "4");
    CHECK_THROWS_WITH(shard_from_environment(), Contains("JOB_COMPLETION_INDEX is not"));
  }
  SECTION("a Slurm array, from its minimum index and step") {
    env.set("SLURM_ARRAY_TASK_ID", "1");
    CHECK_THROWS_WITH(shard_from_environment(), Contains("SLURM_ARRAY_TASK_COUNT is not"));
    env.set("SLURM_ARRAY_TASK_COUNT", "4");
    CHECK(shard_from_environment()->shard == Shard{2, 4});  // --array=0-3
    env.set("SLURM_ARRAY_TASK_MIN", "1");
    CHECK(shard_from_environment()->shard == Shard{1, 4});  // --array=1-4
    env.set("SLURM_ARRAY_TASK_ID", "4");
    CHECK(shard_from_environment()->shard == Shard{4, 4});
    env.set("SLURM_ARRAY_TASK_ID", "7");
    env.set("SLURM_ARRAY_TASK_STEP", "2");
    CHECK(shard_from_environment()->shard == Shard{4, 4});  // --array=1-7:2
    env.set("SLURM_ARRAY_TASK_ID", "6");
    CHECK_THROWS_WITH(shard_from_environment(), Contains("not min + a multiple of the step"));
  }
  SECTION("XPOSCHECK_SHARD wins over the scheduler's variables") {
    env.set("SLURM_ARRAY_TASK_ID", "0");
    env.set("SLURM_ARRAY_TASK_COUNT", "2");
    env.set("XPOSCHECK_SHARD", "3/3");
    CHECK(shard_from_environment()->shard == Shard{3, 3});
  }
}
