// External candidates on long cases (docs/long-context.md): their inputs are written
// and their outputs read back a block of rows at a time, with the verdicts the whole
// case gets; hostile outputs are refused as they are whole.
#include <catch2/catch.hpp>

#include "block_fixtures.hpp"
#include "external_test_support.hpp"

using namespace xposcheck;
using namespace xposcheck::test;

namespace {

// Every case judged in blocks of 7 rows, whatever its size.
SweepOptions in_blocks() {
  SweepOptions options;
  options.block_above_bytes = 0;
  options.block_rows = 7;
  return options;
}

std::vector<Record> run(const Grid& grid, const std::string& script, SweepOptions options = {}) {
  std::vector<std::unique_ptr<Candidate>> list;
  list.push_back(std::make_unique<SubprocessCandidate>(options_for(script, testing_command(script + ".py"))));
  return sweep_records(grid, list, options);
}

const Grid& mixed_grid() {
  static const Grid grid = small_grid("head_dim = 16\nrotary_dim = 12\nseq_len = [37, 61]\nmem_len = [0, 23]\n"
                                      "xpos = [true, false]\n",
                                      "[\"fp32\", \"bf16\", \"fp16\"]");
  return grid;
}

}  // namespace

TEST_CASE("an external candidate's long cases get the verdicts and statistics of the whole cases", "[external]") {
  const auto whole = run(mixed_grid(), "numpy_reference");
  const auto blocks = run(mixed_grid(), "numpy_reference", in_blocks());
  REQUIRE(whole.size() == mixed_grid().cases.size() * 3);
  REQUIRE(blocks.size() == whole.size());
  for (std::size_t i = 0; i < whole.size(); ++i) {
    CHECK(whole[i].outcome == Outcome::pass);
    testing::check_same_record(blocks[i], whole[i]);
  }
}

TEST_CASE("an external candidate in the cache frame is diagnosed in blocks as whole, and accepted alike", "[external]") {
  const Grid grid = small_grid("head_dim = 16\nseq_len = 61\nmem_len = [23, 90]\n", "[\"bf16\"]");
  const auto sweep = [&grid](const SweepOptions& options) {
    std::vector<std::unique_ptr<Candidate>> list;
    list.push_back(std::make_unique<SubprocessCandidate>(
        options_for("cache-frame", testing_command("cache_frame.py") + " --centre keys")));
    return sweep_records(grid, list, options);
  };
  SweepOptions whole_options, block_options = in_blocks();
  for (const std::vector<std::string>& accept : {std::vector<std::string>{}, std::vector<std::string>{"origin", "centre"}}) {
    INFO("accepted: " << accept.size());
    whole_options.diagnosis.accept_conventions = block_options.diagnosis.accept_conventions = accept;
    const auto whole = sweep(whole_options);
    const auto blocks = sweep(block_options);
    REQUIRE(whole.size() == 2);
    REQUIRE(blocks.size() == 2);
    for (std::size_t i = 0; i < whole.size(); ++i) {
      REQUIRE(blocks[i].diagnosis);
      CHECK(blocks[i].diagnosis->kind == DiagnosisKind::convention);
      CHECK(blocks[i].outcome == (accept.empty() ? Outcome::tolerance : Outcome::pass));
      testing::check_same_record(blocks[i], whole[i]);
    }
  }
}

TEST_CASE("a native plugin's long cases are judged in blocks through its runner's files", "[external]") {
  const Grid grid = small_grid("head_dim = 16\nseq_len = 45\nmem_len = [0, 20]\n", "[\"fp32\", \"bf16\"]");
  std::vector<std::unique_ptr<Candidate>> whole_list, block_list;
  whole_list.push_back(example_plugin_candidate("rope"));
  block_list.push_back(example_plugin_candidate("rope"));
  const auto whole = sweep_records(grid, whole_list);
  const auto blocks = sweep_records(grid, block_list, in_blocks());
  REQUIRE(whole.size() == 4);
  REQUIRE(blocks.size() == 4);
  for (std::size_t i = 0; i < whole.size(); ++i) {
    CHECK(whole[i].outcome == Outcome::pass);
    testing::check_same_record(blocks[i], whole[i]);
  }
}

TEST_CASE("hostile outputs of a long case are refused as the whole case's are", "[external]") {
  const Grid grid = small_grid("head_dim = 16\nseq_len = 37\nmem_len = [0, 23]\n", "[\"bf16\"]");
  SECTION("a shape without the memory rows") {
    const auto r = run(grid, "wrong_shape", in_blocks());
    REQUIRE(r.size() == 2);
    CHECK(r[1].outcome == Outcome::dim_mismatch);
    CHECK_THAT(r[1].message, Catch::Contains("k_out shape: expected [1, 1, 60, 16], got [1, 1, 37, 16]"));
  }
  SECTION("float64 outputs: another dtype, named from the header alone") {
    for (const Record& r : run(grid, "wrong_dtype", in_blocks())) {
      CHECK(r.outcome == Outcome::dim_mismatch);
      CHECK_THAT(r.message, Catch::Contains("dtype: expected bf16, got float64"));
    }
  }
  SECTION("float32 values that bf16 cannot hold: the same DIM_MISMATCH as whole") {
    const auto whole = run(grid, "float32_for_bf16");
    const auto blocks = run(grid, "float32_for_bf16", in_blocks());
    REQUIRE(blocks.size() == whole.size());
    for (std::size_t i = 0; i < whole.size(); ++i) {
      CHECK(blocks[i].outcome == Outcome::dim_mismatch);
      CHECK_THAT(blocks[i].message, Catch::Contains("expected bf16, got fp32 (float32 values that bf16 cannot hold"));
      CHECK(blocks[i].message == whole[i].message);
    }
  }
  SECTION("a NaN in a late row") {
    for (const Record& r : run(grid, "nan_output", in_blocks())) CHECK(r.outcome == Outcome::nonfinite);
  }
  SECTION("a file cut short and a file that is no .npy") {
    const auto r = run(grid, "corrupt_npy", in_blocks());
    REQUIRE(r.size() == 2);
    CHECK(r[0].outcome == Outcome::crash);
    CHECK_THAT(r[0].message, Catch::Contains("c000.q_out.npy") && Catch::Contains("bytes of data for shape"));
    CHECK(r[1].outcome == Outcome::crash);
    CHECK_THAT(r[1].message, Catch::Contains("not a .npy file"));
  }
}
