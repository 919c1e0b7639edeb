// The backward pass through the sweep: the built-in models of backward bugs are each
// caught with the right outcome and verdict, correct built-ins and the PyTorch
// candidate (autograd) pass, a wrong gradient shape is a DIM_MISMATCH naming dq or dk,
// and a candidate without the backward pass gets no backward records.
#include <map>
#include <set>

#include <catch2/catch.hpp>

#include "external_test_support.hpp"
#include "xposcheck/harness/builtin_candidates.hpp"

using namespace xposcheck;
using namespace xposcheck::test;
using Catch::Matchers::Contains;

namespace {

Grid smoke(const std::vector<Pass>& passes) {
  Grid grid = load_grid(fs::path(XPOSCHECK_SOURCE_DIR) / "cases/smoke.toml");
  grid.passes = passes;
  return grid;
}

std::vector<Record> sweep_builtins(const Grid& grid, const std::vector<std::string>& names) {
  std::vector<std::unique_ptr<Candidate>> list;
  for (const std::string& name : names) list.push_back(make_builtin(name));
  return sweep_records(grid, list);
}

// The outcome each model of a backward bug gets where it fails on the smoke grid.
const std::map<std::string, Outcome>& backward_bug_outcomes() {
  static const std::map<std::string, Outcome> m = {
      {"backward-untransposed", Outcome::tolerance},
      {"backward-key-scale", Outcome::tolerance},
      {"backward-passthrough-scaled", Outcome::tolerance},
      {"backward-memory-dropped", Outcome::dim_mismatch},
      {"backward-memory-zeroed", Outcome::tolerance},
      {"backward-bf16-accumulation", Outcome::tolerance},
      {"backward-fp16-accumulation", Outcome::tolerance},
  };
  return m;
}

std::string expected_backward_verdict(const std::string& name) {
  for (const CandidateInfo& info : builtin_candidates())
    if (info.name == name) return info.expected_backward_verdict;
  return "?";
}

}  // namespace

TEST_CASE("every buggy backward built-in is caught on the smoke grid with the right outcome",
          "[backward]") {
  std::vector<std::string> names;
  for (const CandidateInfo& info : builtin_candidates())
    if (!info.expected_backward_verdict.empty()) names.push_back(info.name);
  REQUIRE(names.size() == backward_bug_outcomes().size());
  std::set<std::string> caught;
  for (const Record& r : sweep_builtins(smoke({Pass::forward, Pass::backward}), names)) {
    INFO(r.candidate << " " << r.case_id << " " << dtype_name(r.dtype) << " " << pass_name(r.pass)
                     << ": " << r.message);
    if (r.pass == Pass::forward) {
      CHECK(r.outcome == Outcome::pass);  // only the backward pass is broken
      continue;
    }
    if (!fails_gate(r)) continue;
    caught.insert(r.candidate);
    CHECK(r.outcome == backward_bug_outcomes().at(r.candidate));
    REQUIRE(r.diagnosis);
    CHECK(r.diagnosis->verdict == expected_backward_verdict(r.candidate));
    if (r.outcome == Outcome::dim_mismatch) CHECK_THAT(r.message, Contains("dk shape: expected"));
  }
  for (const std::string& name : names) CHECK(caught.count(name) == 1);
}

TEST_CASE("the untransposed gradient is diagnosed as rotated by +phi", "[backward]") {
  const Grid grid = small_grid("head_dim = 16\nseq_len = 7\nmem_len = 3\n");
  auto candidate = make_builtin("backward-untransposed");
  const Record r = evaluate_one(*candidate, grid.cases[0], DType::fp32, Pass::backward,
                                resolve_tolerance(DType::fp32, grid.tolerance, {}));
  CHECK(r.pass == Pass::backward);
  CHECK(r.outcome == Outcome::tolerance);
  REQUIRE(r.tensors.size() == 2);  // no logits for gradients
  CHECK(r.tensors[0].name == "dq");
  CHECK(r.tensors[1].name == "dk");
  CHECK(r.max_ratio > 100);
  REQUIRE(r.diagnosis);
  CHECK(r.diagnosis->verdict == "untransposed-rotation");
  CHECK_THAT(r.diagnosis->explanation, Contains("gradient rotated by +phi"));
}

TEST_CASE("correct built-ins pass every backward case in every dtype on the smoke grid",
          "[backward]") {
  const std::vector<Record> records = sweep_builtins(smoke({Pass::backward}), correct_builtin_names());
  REQUIRE(records.size() == 30 * 3 * correct_builtin_names().size());
  double worst = 0;
  for (const Record& r : records) {
    INFO(r.candidate << " " << r.case_id << " " << dtype_name(r.dtype) << ": " << r.message);
    CHECK(r.pass == Pass::backward);
    CHECK(r.outcome == Outcome::pass);
    worst = std::max(worst, r.max_ratio);
  }
  CHECK(worst > 0.01);  // the gradients were compared, not skipped
}

TEST_CASE("a candidate without the backward pass gets no backward records", "[backward]") {
  const Grid grid = small_grid("head_dim = 16\nseq_len = [1, 7]\nmem_len = 3\n");
  Grid both = grid;
  both.passes = {Pass::forward, Pass::backward};
  const std::vector<Record> records = sweep_builtins(both, {"stale-cache", "fp32-angles"});
  std::map<std::pair<std::string, Pass>, int> count;
  for (const Record& r : records) ++count[{r.candidate, r.pass}];
  CHECK(count[{"stale-cache", Pass::forward}] == 2);
  CHECK(count[{"stale-cache", Pass::backward}] == 0);
  CHECK(count[{"fp32-angles", Pass::forward}] == 2);
  CHECK(count[{"fp32-angles", Pass::backward}] == 2);
  // A case's forward and backward records coexist under their own keys.
  CHECK(records[0].key() != records[1].key());
}

TEST_CASE("a command's wrong gradient shape is a DIM_MISMATCH naming dk", "[backward][external]") {
  Grid grid = small_grid("head_dim = 16\nseq_len = 7\nmem_len = 3\n");
  grid.passes = {Pass::forward, Pass::backward};
  auto candidate = std::make_unique<SubprocessCandidate>(
      options_for("wrong-gradient", testing_command("wrong_gradient_shape.py")));
  CHECK(candidate->has_backward());  // asked with an empty batch
  const std::vector<Record> records = sweep_one(grid, candidate);
  REQUIRE(records.size() == 2);
  CHECK(records[0].outcome == Outcome::pass);
  CHECK(records[1].pass == Pass::backward);
  CHECK(records[1].outcome == Outcome::dim_mismatch);
  CHECK_THAT(records[1].message, Contains("dk shape: expected [1, 1, 10, 16], got [1, 1, 7, 16] (7 = N)"));
}

TEST_CASE("a NumPy command without rotary_backward gets no backward records", "[backward][external]") {
  Grid grid = small_grid("head_dim = 16\nseq_len = 7\nmem_len = 3\n");
  grid.passes = {Pass::backward};
  auto candidate = std::make_unique<SubprocessCandidate>(
      options_for("numpy-reference", testing_command("numpy_reference.py")));
  CHECK(sweep_one(grid, candidate).empty());
}

TEST_CASE("the PyTorch candidate's autograd backward passes every smoke case in every dtype",
          "[backward][external][torch]") {
  const std::string src = XPOSCHECK_SOURCE_DIR;
  auto candidate = std::make_unique<SubprocessCandidate>(options_for(
      "torch", kPython + " '" + src + "/python/candidates/torch_xtransformers.py'", 32));
  const std::vector<Record> records = sweep_one(smoke({Pass::backward}), candidate);
  REQUIRE(records.size() == 90);
  for (const Record& r : records) {
    INFO(r.case_id << " " << dtype_name(r.dtype) << ": " << r.message);
    CHECK(r.outcome == Outcome::pass);
  }
}
