// The native ABI's versions (include/xposcheck/candidate.h, docs/protocol.md): a
// version 2 plugin gets every row's position and passes explicit-position cases,
// forward and backward; a version 1 plugin keeps passing contiguous cases and is
// told, without a call, which version explicit positions need; an unknown version
// is refused. The struct the harness passes is its own size, positions exactly M + N.
#include <cstddef>
#include <string>

#include <catch2/catch.hpp>

#include "../../harness/src/external/plugin_abi.hpp"  // private to the harness
#include "external_test_support.hpp"
#include "harness_fixtures.hpp"
#include "xposcheck/candidate.h"
#include "xposcheck/harness/plugin_candidate.hpp"

using namespace xposcheck;
using namespace xposcheck::test;
using Catch::Matchers::Contains;

namespace {

Grid positions_grid(bool backward) {
  Grid grid = testing::shipped_grid("positions.toml");
  if (backward) grid.passes = {Pass::forward, Pass::backward};
  return grid;
}

}  // namespace

TEST_CASE("a version 2 plugin passes positions.toml in every dtype, forward and backward",
          "[external][plugin]") {
  auto candidate = example_plugin_candidate("rope");
  REQUIRE(describe_plugin(example_plugin("rope")).abi_version == 2);
  const Grid grid = positions_grid(true);
  const auto records = sweep_one(grid, candidate);
  REQUIRE(records.size() == grid.cases.size() * 3 * 2);
  std::size_t backward = 0;
  for (const Record& r : records) {
    INFO(r.case_id << " " << dtype_name(r.dtype) << " " << pass_name(r.pass) << ": " << r.message);
    CHECK(r.outcome == Outcome::pass);
    backward += r.pass == Pass::backward;
  }
  CHECK(backward == grid.cases.size() * 3);
}

TEST_CASE("a version 1 plugin passes contiguous cases and is refused explicit positions",
          "[external][plugin]") {
  REQUIRE(describe_plugin(example_plugin("rope_v1")).abi_version == 1);
  CHECK_THAT(example_plugin_candidate("rope_v1")->description(), Contains("ABI version 1"));
  const auto contiguous = sweep_one(
      small_grid("head_dim = 16\nseq_len = [1, 7]\nmem_len = [0, 3]\nfirst_position = [\"default\", 5]\n",
                 "[\"fp32\", \"bf16\", \"fp16\"]"),
      example_plugin_candidate("rope_v1"));
  REQUIRE(contiguous.size() == 24);
  for (const Record& r : contiguous) {
    INFO(r.case_id << " " << dtype_name(r.dtype) << ": " << r.message);
    CHECK(r.outcome == Outcome::pass);
  }

  Grid grid = positions_grid(true);
  grid.cases.resize(2);
  const auto refused = sweep_one(grid, example_plugin_candidate("rope_v1"));
  REQUIRE(refused.size() == 2 * 3 * 2);  // backward too: the plugin has it
  for (const Record& r : refused) {
    INFO(r.case_id << " " << dtype_name(r.dtype) << " " << pass_name(r.pass));
    CHECK(r.outcome == Outcome::crash);
    CHECK_THAT(r.message, Contains("unsupported: explicit positions") &&
                              Contains("need native candidate ABI version 2") &&
                              Contains("the plugin declares version 1"));
  }
}

TEST_CASE("a plugin declaring an ABI version newer than xposcheck's is refused",
          "[external][plugin][hostile]") {
  Hostile hostile("future-abi");
  const std::string next = std::to_string(XPOSCHECK_CANDIDATE_ABI_VERSION + 1);
  CHECK_THROWS_WITH(make_plugin_candidate(example_plugin("hostile")),
                    Contains("libxposcheck_example_hostile.so: unusable native candidate") &&
                        Contains("implements candidate ABI version " + next) &&
                        Contains("speaks versions 1 to " + std::to_string(XPOSCHECK_CANDIDATE_ABI_VERSION)));
}

TEST_CASE("the plugin gets the harness's struct_size and exactly the case's positions",
          "[external][plugin][hostile]") {
  Hostile hostile("echo-case");
  const Grid grid = small_grid("head_dim = 16\nseq_len = 3\nmem_len = 2\npositions = [\"default\", \"random:50\"]\n");
  REQUIRE(grid.cases.size() == 2);
  const auto records = sweep_one(grid, example_plugin_candidate("hostile"));
  REQUIRE(records.size() == 2);
  const std::string size = "struct_size " + std::to_string(sizeof(xposcheck_case)) + " rows 5 positions";
  for (std::size_t i = 0; i < 2; ++i) {
    const Case& c = grid.cases[i].params;
    std::string want = size + (c.positions ? "" : " none");
    for (long p : c.positions ? c.positions->keys : std::vector<long>{}) want.append(1, ' ').append(std::to_string(p));
    INFO(records[i].case_id);
    CHECK(records[i].outcome == Outcome::crash);
    CHECK_THAT(records[i].message, Contains(want));
  }
}

TEST_CASE("key_positions is read only when struct_size covers it", "[external][plugin]") {
  const int64_t positions[2] = {4, 1};
  xposcheck_case c{};
  c.key_positions = positions;
  c.struct_size = sizeof c;
  CHECK(xposcheck_case_key_positions(&c) == positions);
  c.struct_size = offsetof(xposcheck_case, key_positions);  // a caller from version 1
  CHECK(xposcheck_case_key_positions(&c) == nullptr);
}

TEST_CASE("the ABI case carries M + N positions or refuses the case", "[external][plugin]") {
  Case c;
  c.head_dim = 8;
  c.seq_len = 2;
  c.mem_len = 1;
  external::AbiCase abi;
  external::abi_case(c, XPOSCHECK_DTYPE_FP32, "contiguous", abi);
  CHECK(abi.view.struct_size == sizeof(xposcheck_case));
  CHECK(abi.view.key_positions == nullptr);
  CHECK(abi.view.first_position == -1);

  c.positions = PositionList::of({7, 3, 9}, 2);
  external::abi_case(c, XPOSCHECK_DTYPE_FP32, "listed", abi);
  REQUIRE(abi.view.key_positions != nullptr);
  CHECK(std::vector<int64_t>(abi.view.key_positions, abi.view.key_positions + 3) ==
        std::vector<int64_t>{7, 3, 9});
  CHECK(abi.view.first_position == 7);
  CHECK(external::unsupported(abi.view, 1) != "");
  CHECK(external::unsupported(abi.view, 2) == "");

  c.positions = PositionList::of({7, 3}, 2);  // one short of M + N
  CHECK_THROWS_WITH(external::abi_case(c, XPOSCHECK_DTYPE_FP32, "short", abi),
                    Contains("2 explicit positions for M + N = 3 rows"));
}
