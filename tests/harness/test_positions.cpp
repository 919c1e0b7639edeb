// Explicit positions through the harness: random position ids as vLLM's tests draw
// them. Correct candidates, built-in and external, pass them; a bug is still named.
// Native plugins on explicit positions: test_plugin_abi_versions.cpp.
#include <catch2/catch.hpp>

#include "external_test_support.hpp"
#include "harness_fixtures.hpp"

using namespace xposcheck;
using namespace xposcheck::test;
using Catch::Matchers::Contains;

TEST_CASE("correct built-ins pass every case of positions.toml in every dtype") {
  const Grid grid = testing::shipped_grid("positions.toml");
  REQUIRE(grid.cases.size() == 16);
  for (const GridCase& gc : grid.cases) {
    REQUIRE(gc.params.positions);
    for (DType t : grid.dtypes) {
      for (const char* name : {"fp32-angles", "fp64-angles"}) {
        const Record r = testing::run_builtin(name, gc, t);
        INFO(name << " " << gc.id << " " << dtype_name(t) << ": " << r.message);
        CHECK(r.outcome == Outcome::pass);
      }
    }
  }
}

TEST_CASE("a bug on random positions is still caught and named") {
  const Grid grid = testing::shipped_grid("positions.toml");
  const GridCase& gc = grid.cases.front();
  const Record r = testing::run_builtin("reversed-rotation", gc, DType::fp32);
  INFO(r.message);
  CHECK(r.outcome == Outcome::tolerance);
  REQUIRE(r.diagnosis);
  CHECK(r.diagnosis->verdict == "reversed-rotation");
}

TEST_CASE("a Python candidate reading Case.key_positions() passes random positions", "[external]") {
  Grid grid = testing::shipped_grid("positions.toml");
  grid.cases.resize(4);
  const std::vector<Record> records = sweep_one(
      grid, std::make_unique<SubprocessCandidate>(options_for("numpy", testing_command("numpy_reference.py"))));
  REQUIRE(records.size() == 12);
  for (const Record& r : records) {
    INFO(r.case_id << " " << dtype_name(r.dtype) << ": " << r.message);
    CHECK(r.outcome == Outcome::pass);
  }
}
