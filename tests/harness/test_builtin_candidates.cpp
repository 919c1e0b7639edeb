// The built-in candidates: correct ones pass, each buggy one is caught with the
// outcome its bug deserves (they are the harness's own mutation tests).
#include <catch2/catch.hpp>

#include <filesystem>

#include "harness_fixtures.hpp"

using namespace xposcheck;
using namespace xposcheck::testing;

namespace {

Results sweep_grid(const Grid& grid, const std::vector<std::string>& names, const std::string& file) {
  std::vector<std::unique_ptr<Candidate>> candidates;
  for (const auto& n : names) candidates.push_back(make_builtin(n));
  const auto path = std::filesystem::temp_directory_path() / file;
  std::filesystem::remove(path);
  std::vector<std::string> order;
  for (const GridCase& gc : grid.cases) order.push_back(gc.id);
  ResultsStore store(path, RunInfo{}, order);
  run_sweep(grid, candidates, SweepOptions{}, store);
  return store.finish();
}

}  // namespace

TEST_CASE("every correct built-in candidate passes the smoke grid in every dtype") {
  const Grid grid = shipped_grid("smoke.toml");
  const Results results =
      sweep_grid(grid, {"fp32-angles", "fp64-angles", "native-dtype"}, "xpc-correct-smoke.json");
  REQUIRE(results.records.size() == grid.cases.size() * 3 * 3);
  for (const Record& r : results.records) {
    INFO(r.candidate << " " << r.case_id << " " << dtype_name(r.dtype) << ": " << r.message);
    CHECK(r.outcome == Outcome::pass);
    // Margin: the worst element uses at most 70% of its allowance.
    CHECK(r.max_ratio < 0.7);
  }
}

TEST_CASE("unsliced-scale is a DIM_MISMATCH with memory and a PASS without") {
  const Grid grid = shipped_grid("regressions/x-transformers-xpos-mems.toml");
  const Results results = sweep_grid(grid, {"unsliced-scale"}, "xpc-unsliced.json");
  std::size_t mismatches = 0, passes = 0;
  for (const Record& r : results.records) {
    INFO(r.case_id << " " << dtype_name(r.dtype) << ": " << r.message);
    if (r.params.mem_len > 0 && r.params.xpos) {
      CHECK(r.outcome == Outcome::dim_mismatch);
      REQUIRE(r.shape);
      CHECK(r.shape->relation.find(std::to_string(r.params.key_rows()) + " = M + N") != std::string::npos);
      ++mismatches;
    } else {
      CHECK(r.outcome == Outcome::pass);
      ++passes;
    }
  }
  CHECK(mismatches > 0);
  CHECK(passes > 0);
}

TEST_CASE("the bug report's own configuration: 1024 = N and 1124 = M + N") {
  const Record r = run_builtin("unsliced-scale", grid_case(128, 1024, 100), DType::fp32);
  CHECK(r.outcome == Outcome::dim_mismatch);
  CHECK(r.message.find("1024 = N") != std::string::npos);
  CHECK(r.message.find("1124 = M + N") != std::string::npos);
}

TEST_CASE("each buggy candidate gets the outcome its bug deserves") {
  struct Expectation {
    const char* candidate;
    GridCase gc;
    DType dtype;
    Outcome outcome;
    const char* tensor;  // the tensor whose error shows the bug
  };
  const Expectation cases[] = {
      {"positions-from-zero", grid_case(64, 64, 100), DType::fp32, Outcome::tolerance, "k_out"},
      {"swapped-qk-scale", grid_case(64, 256, 0), DType::bf16, Outcome::tolerance, "q_out"},
      {"wrong-layout", grid_case(64, 7, 0), DType::fp16, Outcome::tolerance, "q_out"},
      {"angles-in-dtype", grid_case(64, 1023, 0), DType::bf16, Outcome::tolerance, "q_out"},
      {"positions-in-dtype", grid_case(64, 1023, 0), DType::bf16, Outcome::tolerance, "q_out"},
      {"positions-in-dtype", grid_case(64, 4096, 0), DType::fp16, Outcome::tolerance, "q_out"},
      {"centers-differ", grid_case(64, 64, 100), DType::fp32, Outcome::tolerance, "k_out"},
  };
  for (const Expectation& e : cases) {
    const Record r = run_builtin(e.candidate, e.gc, e.dtype);
    INFO(e.candidate << ": " << r.message);
    CHECK(r.outcome == e.outcome);
    const auto it = std::find_if(r.tensors.begin(), r.tensors.end(),
                                 [&](const TensorStats& t) { return t.name == e.tensor; });
    REQUIRE(it != r.tensors.end());
    CHECK(it->over_tolerance > 0);
  }
}

TEST_CASE("positions-from-zero and centers-differ pass without memory") {
  for (const char* name : {"positions-from-zero", "centers-differ"}) {
    const Record r = run_builtin(name, grid_case(64, 64, 0), DType::fp32);
    INFO(name << ": " << r.message);
    CHECK(r.outcome == Outcome::pass);
  }
}

TEST_CASE("positions-in-dtype passes in fp32, and wherever positions are exact in the dtype") {
  CHECK(run_builtin("positions-in-dtype", grid_case(64, 1023, 100), DType::fp32).outcome == Outcome::pass);
  // bf16 holds every integer up to 256, fp16 up to 2048.
  CHECK(run_builtin("positions-in-dtype", grid_case(64, 256, 0), DType::bf16).outcome == Outcome::pass);
  CHECK(run_builtin("positions-in-dtype", grid_case(64, 2048, 0), DType::fp16).outcome == Outcome::pass);
}

TEST_CASE("angles-in-dtype passes in fp32, where the dtype is the angle precision") {
  const Record r = run_builtin("angles-in-dtype", grid_case(64, 1023, 0), DType::fp32);
  CHECK(r.outcome == Outcome::pass);
}

TEST_CASE("stale-cache fails only after it has seen another case") {
  auto stale = make_builtin("stale-cache");
  REQUIRE(stale->execution() == Execution::serial);
  const GridCase first = grid_case(64, 16, 0), later = grid_case(64, 256, 0);
  const Tolerance tol = default_tolerance(DType::fp32);
  CHECK(evaluate_one(*stale, first, DType::fp32, tol).outcome == Outcome::pass);
  const Record r = evaluate_one(*stale, later, DType::fp32, tol);
  INFO(r.message);
  CHECK(r.outcome == Outcome::tolerance);
  auto fresh = make_builtin("stale-cache");
  CHECK(evaluate_one(*fresh, later, DType::fp32, tol).outcome == Outcome::pass);
}

TEST_CASE("candidates are listed with descriptions and built by name") {
  CHECK(builtin_candidates().size() >= 10);
  for (const CandidateInfo& info : builtin_candidates()) {
    auto c = make_builtin(info.name);
    REQUIRE(c);
    CHECK(c->name() == info.name);
    CHECK(!c->description().empty());
  }
  CHECK(make_builtin("no-such-candidate") == nullptr);
  const auto correct = correct_builtin_names();
  for (const char* name : {"fp32-angles", "fp64-angles", "native-dtype"}) {
    CHECK(std::find(correct.begin(), correct.end(), name) != correct.end());
  }
  CHECK(std::find(correct.begin(), correct.end(), "wrong-layout") == correct.end());
}
