// The diagnosis names the bug: every known-buggy built-in candidate gets the right
// verdict wherever it fails, correct candidates get none, garbage is "unexplained", and
// the decomposition reads shifts and centres off the errors.
#include <unistd.h>

#include <catch2/catch.hpp>

#include "temp_dir.hpp"
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <numbers>
#include <set>
#include <stdexcept>

#include "xposcheck/cases/grid.hpp"
#include "xposcheck/harness/builtin_candidates.hpp"
#include "xposcheck/harness/diagnosis.hpp"
#include "xposcheck/harness/results.hpp"
#include "xposcheck/harness/sweep.hpp"

using namespace xposcheck;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
namespace fs = std::filesystem;

using xposcheck::testing::TempDir;

namespace {


Results sweep_grid(const std::string& grid_file, const std::vector<std::string>& names,
                   const DiagnosisOptions& diagnosis = {}) {
  const Grid grid = load_grid(fs::path(XPOSCHECK_SOURCE_DIR) / grid_file);
  std::vector<std::unique_ptr<Candidate>> candidates;
  for (const std::string& name : names) candidates.push_back(make_builtin(name));
  SweepOptions options;
  options.diagnosis = diagnosis;
  std::vector<std::string> order;
  for (const GridCase& gc : grid.cases) order.push_back(gc.id);
  TempDir dir;
  ResultsStore store(dir.path / "results.json", RunInfo{}, order);
  run_sweep(grid, candidates, options, store);
  return store.finish();
}

// The verdict each known-buggy built-in candidate must get wherever it fails: the
// registry's table. Bugs between the calls of a stream are checked on streams
// (test_streams.cpp), bugs of the backward pass on it (test_backward.cpp).
const std::map<std::string, std::string>& expected_verdicts() {
  static const std::map<std::string, std::string> m = [] {
    std::map<std::string, std::string> verdicts;
    for (const CandidateInfo& info : builtin_candidates()) {
      if (!info.correct && info.scope == BugScope::any && !info.expected_verdict.empty())
        verdicts[info.name] = info.expected_verdict;
    }
    return verdicts;
  }();
  return m;
}

std::vector<std::string> buggy_names() {
  std::vector<std::string> names;
  for (const CandidateInfo& info : builtin_candidates()) {
    if (!info.correct && info.scope == BugScope::any && !info.expected_verdict.empty()) names.push_back(info.name);
  }
  return names;
}

// Checks every failing record's verdict; returns the candidates seen failing.
std::set<std::string> check_verdicts(const Results& results) {
  std::set<std::string> failing;
  for (const Record& r : results.records) {
    if (!fails_gate(r.outcome)) {
      CHECK_FALSE(r.diagnosis);
      continue;
    }
    INFO(r.candidate << " " << r.case_id << " " << dtype_name(r.dtype) << ": " << r.message);
    failing.insert(r.candidate);
    REQUIRE(expected_verdicts().count(r.candidate) == 1);
    REQUIRE(r.diagnosis);
    INFO("diagnosis: " << summary_line(*r.diagnosis) << " / " << r.diagnosis->evidence);
    CHECK(r.diagnosis->verdict == expected_verdicts().at(r.candidate));
  }
  return failing;
}

// One case of a grid by its id.
const GridCase& case_of(const Grid& grid, const std::string& id) {
  for (const GridCase& g : grid.cases) {
    if (g.id == id) return g;
  }
  FAIL("no case " << id);
  throw std::logic_error("unreachable");
}

// The record with the centre convention accepted, checked to pass when judged again
// in the convention's frame (`where`), every element.
Record accepted_in_frame(Candidate& candidate, const GridCase& gc, const Tolerance& tol, const std::string& where) {
  DiagnosisOptions accept;
  accept.accept_conventions = {"centre"};
  Record accepted = evaluate_one(candidate, gc, DType::fp32, tol, 256, accept);
  CHECK(accepted.outcome == Outcome::pass);
  REQUIRE(accepted.diagnosis);
  CHECK(accepted.diagnosis->accepted);
  CHECK_THAT(accepted.message, StartsWith("passes in the frame of the accepted centre convention (" + where +
                                          "), every element judged there: within tolerance"));
  CHECK(accepted.max_ratio <= 1.0);
  return accepted;
}

}  // namespace

TEST_CASE("every buggy built-in candidate is diagnosed right on the smoke grid") {
  const std::vector<std::string> names = buggy_names();
  REQUIRE(names.size() == expected_verdicts().size());
  // Every buggy model names the verdict of the pass it breaks.
  for (const CandidateInfo& info : builtin_candidates())
    CHECK((info.correct || !info.expected_verdict.empty() || !info.expected_backward_verdict.empty()));
  const std::set<std::string> failing = check_verdicts(sweep_grid("cases/smoke.toml", names));
  // Each of them fails somewhere on the smoke grid, so each verdict was checked, but
  // positions-in-dtype: the smoke grid's positions (|p| <= 255) are exact in bf16 and
  // fp16, so it passes there; the regression grid below checks its verdict.
  for (const std::string& name : names) CHECK(failing.count(name) == (name == "positions-in-dtype" ? 0u : 1u));
}

TEST_CASE("every buggy built-in candidate is diagnosed right on the x-transformers regression") {
  const Results results =
      sweep_grid("cases/regressions/x-transformers-xpos-mems.toml", buggy_names());
  const std::set<std::string> failing = check_verdicts(results);
  for (const char* name :
       {"unsliced-scale", "positions-from-zero", "swapped-qk-scale", "wrong-layout",
        "angles-in-dtype", "positions-in-dtype", "stale-cache", "centers-differ", "random-garbage"}) {
    CHECK(failing.count(name) == 1);
  }
  for (const Record& r : results.records) {
    if (!r.diagnosis || r.case_id != "D128-N1024-M100-s1") continue;
    if (r.candidate == "unsliced-scale") {
      CHECK_THAT(r.diagnosis->explanation, Contains("M+N = 1124") && Contains("N = 1024"));
      CHECK_THAT(r.diagnosis->evidence, Contains("1024 = N, 1124 = M + N"));
    }
    if (r.candidate == "positions-from-zero") {
      CHECK_THAT(r.diagnosis->explanation, Contains("shifted by +100 (= M)"));
      REQUIRE(r.diagnosis->estimates.key_shift);
      CHECK(*r.diagnosis->estimates.key_shift == Approx(100).margin(1e-3));
    }
  }
}

TEST_CASE("correct candidates get no diagnosis") {
  const Results results = sweep_grid("cases/smoke.toml", correct_builtin_names());
  REQUIRE_FALSE(results.records.empty());
  for (const Record& r : results.records) {
    INFO(r.candidate << " " << r.case_id << " " << dtype_name(r.dtype));
    CHECK(r.outcome == Outcome::pass);
    CHECK_FALSE(r.diagnosis);
  }
}

TEST_CASE(
    "a centre convention keeps TOLERANCE with its diagnosis, or passes in its frame when accepted") {
  const Grid grid = load_grid(fs::path(XPOSCHECK_SOURCE_DIR) / "cases/smoke.toml");
  const GridCase* gc = &case_of(grid, "D64-N64-M100-s1");
  auto candidate = make_builtin("torchscale-centre");
  const Tolerance tol = resolve_tolerance(DType::fp32, grid.tolerance, {});

  const Record plain = evaluate_one(*candidate, *gc, DType::fp32, tol);
  CHECK(plain.outcome == Outcome::tolerance);
  REQUIRE(plain.diagnosis);
  CHECK(plain.diagnosis->kind == DiagnosisKind::convention);
  CHECK(plain.diagnosis->convention == "centre");
  CHECK_FALSE(plain.diagnosis->accepted);
  // ceil((100 + 64) / 2) - 100 = -18 instead of floor(64 / 2) = 32.
  CHECK_THAT(plain.diagnosis->explanation,
             Contains("centred at ceil((M+N)/2) from the first key = -18 instead of 32"));
  CHECK(plain.diagnosis->grid_setting == "center = \"keys-ceil\"");
  CHECK_THAT(plain.message,
             StartsWith("convention-only: centre on the whole key range (torchscale)"));
  CHECK_THAT(plain.message, Contains("--accept-convention centre"));

  accepted_in_frame(*candidate, *gc, tol, "center = \"keys-ceil\"");
}

TEST_CASE("an accepted convention not judged in its frame passes only on logits of every query row") {
  // attach_diagnosis alone does not judge the frame again (the relative rule, explicit
  // positions): the logits then stand for every element, so they must hold every
  // query row; 128 sampled rows of 256 leave half the rows unjudged.
  const Grid grid = load_grid(fs::path(XPOSCHECK_SOURCE_DIR) / "cases/smoke.toml");
  const GridCase& gc = case_of(grid, "D64-N256-M100-s1");
  auto candidate = make_builtin("torchscale-centre");
  const Tolerance tol = resolve_tolerance(DType::fp32, grid.tolerance, {});
  DiagnosisOptions accept;
  accept.accept_conventions = {"centre"};
  for (const std::size_t logit_rows : {std::size_t(256), std::size_t(128)}) {
    INFO("logit rows " << logit_rows);
    Record r = evaluate_one(*candidate, gc, DType::fp32, tol, logit_rows);
    REQUIRE(r.outcome == Outcome::tolerance);
    REQUIRE(r.diagnosis);
    Diagnosis d = *r.diagnosis;
    r.diagnosis.reset();
    attach_diagnosis(r, d, accept);
    if (logit_rows == 256) {
      CHECK(r.outcome == Outcome::pass);
      CHECK(r.diagnosis->accepted);
      CHECK_THAT(r.message, StartsWith("passes on logits") && Contains("which cover every query row with every key"));
    } else {
      CHECK(r.outcome == Outcome::tolerance);
      CHECK_FALSE(r.diagnosis->accepted);
      CHECK_THAT(r.message, Contains("which this case cannot be (not judged there), and its logits cover 128 of "
                                     "the 256 query rows"));
    }
  }
}

TEST_CASE("a centre q and k share at a half position is a convention, accepted in its frame") {
  // N/2 by true division (odd N): no grid holds the centre 3.5; its frame is SPEC's
  // outputs centred at 3, moved on by the half.
  const Grid grid = load_grid(fs::path(XPOSCHECK_SOURCE_DIR) / "cases/smoke.toml");
  const GridCase* gc = &case_of(grid, "D64-N7-s1");
  auto candidate = make_builtin("odd-centre");
  const Tolerance tol = resolve_tolerance(DType::fp32, grid.tolerance, {});
  const Record plain = evaluate_one(*candidate, *gc, DType::fp32, tol);
  CHECK(plain.outcome == Outcome::tolerance);
  REQUIRE(plain.diagnosis);
  CHECK(plain.diagnosis->verdict == "centre-unrounded");
  CHECK(plain.diagnosis->kind == DiagnosisKind::convention);
  CHECK(plain.diagnosis->grid_setting.empty());
  CHECK_THAT(plain.message, StartsWith("convention-only: XPOS centre N/2 = 3.5"));
  accepted_in_frame(*candidate, *gc, tol, "q and k centred at 3.5");
}

TEST_CASE("the history dependence of a stale cache shows only against a fresh instance") {
  const Grid grid = load_grid(fs::path(XPOSCHECK_SOURCE_DIR) / "cases/smoke.toml");
  // Alone, the stale cache has seen only this case: it passes.
  auto fresh = make_builtin("stale-cache");
  const Record alone = evaluate_one(*fresh, grid.cases.at(5), DType::fp32,
                                    resolve_tolerance(DType::fp32, grid.tolerance, {}));
  CHECK(alone.outcome == Outcome::pass);
  CHECK_FALSE(alone.diagnosis);
  // After other cases it crashes or fails; a fresh instance says why.
  const Results results = sweep_grid("cases/smoke.toml", {"stale-cache"});
  std::size_t crashes = 0;
  for (const Record& r : results.records) {
    if (!fails_gate(r.outcome)) continue;
    REQUIRE(r.diagnosis);
    CHECK(r.diagnosis->verdict == "history-dependence");
    CHECK_THAT(r.diagnosis->evidence, StartsWith("a fresh instance gives PASS"));
    crashes += r.outcome == Outcome::crash ? 1 : 0;
  }
  CHECK(crashes > 0);
}

TEST_CASE("every hypothesis explains itself with the case's numbers") {
  Case c;
  c.head_dim = 128;
  c.rotary_dim = 96;
  c.seq_len = 1023;
  c.mem_len = 100;
  c.interpolation = 2;
  c.base_rescale = 4;
  const std::vector<HypothesisInfo> templates = hypothesis_catalogue();
  const std::vector<HypothesisInfo> written = hypothesis_catalogue(&c);
  REQUIRE(templates.size() == written.size());
  REQUIRE(templates.size() >= 20);
  for (const HypothesisInfo& h : written) {
    INFO(h.name << ": " << h.explanation);
    CHECK(h.explanation.find('{') == std::string::npos);
    CHECK(h.explanation.find("template error") == std::string::npos);
    CHECK((h.kind == "bug" || h.kind == "convention" || h.kind == "precision"));
  }
  auto find = [&](const std::string& name) {
    for (const HypothesisInfo& h : written) {
      if (h.name == name) return h.explanation;
    }
    return std::string();
  };
  CHECK_THAT(find("memory-offset-missing"), Contains("shifted by +100 (= M)"));
  CHECK_THAT(find("centre-unrounded"), Contains("N/2 = 511.5 not rounded to floor(N/2) = 511"));
  CHECK_THAT(find("centre-key-range"), Contains("ceil((M+N)/2) from the first key = 462 instead of 511"));
  CHECK_THAT(find("scale-on-passthrough"), Contains("features 96..127"));
  CHECK_THAT(find("angles-in-dtype"), Contains("formed in bf16") && Contains("2^-8"));
}
