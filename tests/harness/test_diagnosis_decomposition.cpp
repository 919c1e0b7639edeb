// The phase / magnitude decomposition and the hypotheses built from its estimates: a
// candidate with a shift or centre no built-in has is still named, with the number.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numbers>
#include <optional>

#include "xposcheck/harness/builtin_candidates.hpp"
#include "xposcheck/harness/compare.hpp"
#include "xposcheck/harness/diagnosis.hpp"
#include "xposcheck/harness/results.hpp"
#include "xposcheck/harness/sweep.hpp"
#include "harness/twisted_candidate.hpp"

using namespace xposcheck;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

using testing::Twist;
using testing::TwistedCandidate;

GridCase small_case() {
  Case c;
  c.head_dim = 32;
  c.seq_len = 40;
  c.mem_len = 20;
  return {case_id(c) + "-s1", c, 1};
}

Record evaluate(Candidate& candidate, const GridCase& gc, DType t = DType::fp32,
                const DiagnosisOptions& d = {}) {
  return evaluate_one(candidate, gc, t, resolve_tolerance(t, {}, {}), 256, d);
}

const FrequencyFit& fit_of(const Diagnosis& d, const char* tensor, long pair) {
  for (const TensorDecomposition& t : d.decomposition) {
    if (t.tensor != tensor) continue;
    for (const FrequencyFit& f : t.fits) {
      if (f.pair == pair) return f;
    }
  }
  FAIL("no fit for pair " << pair << " of " << tensor);
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("a key shift no built-in has is read off the angle error") {
  TwistedCandidate candidate({.key_shift = 7});
  const Record r = evaluate(candidate, small_case());
  REQUIRE(r.outcome == Outcome::tolerance);
  REQUIRE(r.diagnosis);
  CHECK(r.diagnosis->verdict == "key-position-shift");
  CHECK_THAT(r.diagnosis->explanation, Contains("key positions shifted by +7"));
  REQUIRE(r.diagnosis->estimates.key_shift);
  CHECK(*r.diagnosis->estimates.key_shift == Approx(7).margin(1e-4));
  // Pair 0 turns by omega_0 = 1 per position: a constant error of 7 - 2 pi, no slope.
  const FrequencyFit& f = fit_of(*r.diagnosis, "k_out", 0);
  CHECK(f.omega == 1.0);
  CHECK(f.angle.intercept == Approx(7 - 2 * std::numbers::pi).margin(1e-5));
  CHECK(std::fabs(f.angle.slope) < 1e-8);
  CHECK(f.angle.residual < 1e-5);
  // Queries are untouched.
  const FrequencyFit& q = fit_of(*r.diagnosis, "q_out", 0);
  CHECK(std::fabs(q.angle.intercept) < 1e-5);
}

TEST_CASE("centres no built-in has are read off the log-scale error") {
  // SPEC's centre here is floor(40 / 2) = 20.
  SECTION("shared") {
    TwistedCandidate candidate({.query_centre = 5, .key_centre = 5});
    const Record r = evaluate(candidate, small_case());
    REQUIRE(r.diagnosis);
    CHECK(r.diagnosis->verdict == "shared-centre");
    CHECK_THAT(r.diagnosis->explanation, Contains("both centred at 5 instead of 20"));
    // ln sigma_q is off by lambda_j * (c - c') = lambda_j * 15.
    const FrequencyFit& f = fit_of(*r.diagnosis, "q_out", 0);
    CHECK(f.log_scale.intercept == Approx(f.lambda * 15).epsilon(1e-4));
    CHECK(std::fabs(f.log_scale.slope) < 1e-8);
  }
  SECTION("keys only") {
    TwistedCandidate candidate({.key_centre = -3});
    const Record r = evaluate(candidate, small_case());
    REQUIRE(r.diagnosis);
    CHECK(r.diagnosis->verdict == "key-centre");
    CHECK_THAT(r.diagnosis->explanation, Contains("keys centred at -3 instead of 20"));
  }
  SECTION("queries only") {
    // In bf16, where the log-scale error is read through 8-bit rounding.
    TwistedCandidate candidate({.query_centre = -20});
    const Record r = evaluate(candidate, small_case(), DType::bf16);
    REQUIRE(r.diagnosis);
    INFO(r.diagnosis->evidence << "; query centre estimate "
                               << r.diagnosis->estimates.query_centre.value_or(NAN));
    CHECK(r.diagnosis->verdict == "query-centre");
    CHECK_THAT(r.diagnosis->explanation, Contains("queries centred at -20 instead of 20"));
  }
}

TEST_CASE("angles rounded to the dtype leave an angle error proportional to |phi| eps") {
  const GridCase gc = small_case();
  auto buggy = make_builtin("angles-in-dtype");
  const Record r = evaluate(*buggy, gc, DType::bf16);
  REQUIRE(r.diagnosis);
  CHECK(r.diagnosis->verdict == "angles-in-dtype");
  CHECK(r.diagnosis->kind == DiagnosisKind::precision);
  CHECK_THAT(r.diagnosis->explanation, Contains("|phi| * 2^-8"));
  for (const TensorDecomposition& t : r.diagnosis->decomposition) {
    CHECK(t.angle_error_per_phi_eps > 0.1);
    CHECK(t.angle_error_per_phi_eps < 3.0);
  }
  // The same case, fp32 angles: nothing to explain.
  auto good = make_builtin("fp32-angles");
  CHECK_FALSE(evaluate(*good, gc, DType::bf16).diagnosis);
}

TEST_CASE("the diagnosis samples rows deterministically and still finds the bug") {
  Case c;
  c.head_dim = 128;
  c.seq_len = 1024;
  c.mem_len = 100;
  const GridCase gc{case_id(c) + "-s1", c, 1};
  auto candidate = make_builtin("positions-from-zero");
  DiagnosisOptions few;
  few.max_rows = 16;
  const Record a = evaluate(*candidate, gc, DType::bf16, few);
  const Record b = evaluate(*candidate, gc, DType::bf16, few);
  REQUIRE(a.diagnosis);
  CHECK(a.diagnosis->verdict == "memory-offset-missing");
  // 16 rows of q_out and of k_out, 128 elements each, plus k_out's worst row unless the
  // 16 hold it already.
  const HypothesisScore& fit = a.diagnosis->tried.back();
  CHECK((fit.compared == 32 * 128 || fit.compared == 33 * 128));
  CHECK(a.diagnosis->spec.max_ratio == b.diagnosis->spec.max_ratio);
  CHECK(fit.max_ratio == b.diagnosis->tried.back().max_ratio);
}

TEST_CASE("random garbage is unexplained, with the decomposition as evidence") {
  auto candidate = make_builtin("random-garbage");
  const Record r = evaluate(*candidate, small_case());
  REQUIRE(r.diagnosis);
  CHECK(r.diagnosis->verdict == "unexplained");
  CHECK(r.diagnosis->kind == DiagnosisKind::unexplained);
  CHECK_THAT(r.diagnosis->explanation, Contains("closest:"));
  CHECK_THAT(r.diagnosis->evidence, Contains("max angle error"));
  CHECK_FALSE(r.diagnosis->estimates.key_shift);
  CHECK(r.diagnosis->decomposition.size() == 2);
  CHECK(r.diagnosis->decomposition[1].max_angle_error > 2.0);
}

TEST_CASE("a failure with no outputs to score names no closest hypothesis") {
  // A shape error no known bug explains (seven query rows against none), whose fresh
  // instance fails the same way: no hypothesis compared an element, so none is closest.
  Case c;
  c.head_dim = 4;
  c.seq_len = 7;
  const Tensor q({1, 1, 7, 4}, Values(28, 0.5)), k({1, 1, 7, 4}, Values(28, 0.25));
  const Golden golden = golden_fast(c, q, k);
  const RotaryTables tables(c, 0, 0);
  const Tolerance tol = resolve_tolerance(DType::fp32, {}, {});
  Record record;
  record.params = c;
  record.outcome = Outcome::dim_mismatch;
  record.message = "shape error raised by the candidate: size of tensor a (7) must match tensor b (0)";
  int fresh_runs = 0;
  const FreshRun fresh = [&]() -> Attempt {
    ++fresh_runs;
    return CandidateFailure{FailureKind::shape, "size of tensor a (7) must match tensor b (0)"};
  };
  const Diagnosis d = diagnose({&c, DType::fp32, &q, &k, &golden, &tables, &tol, nullptr, fresh, false}, record);
  CHECK(fresh_runs == 1);
  CHECK(d.verdict == "unexplained");
  CHECK(d.explanation == "no known bug or convention applies to this failure");
  CHECK(d.evidence == "a fresh instance fails the same way: size of tensor a (7) must match tensor b (0)");
  REQUIRE_FALSE(d.tried.empty());
  CHECK(d.tried.back().name == "history-dependence");
  CHECK(d.tried.back().compared == 0);
}

namespace {

// native-dtype's fp16 record at D = 128 over n queries, centred at `centre` if given.
Record native_dtype_fp16(long n, std::optional<long> centre = std::nullopt) {
  auto candidate = make_builtin("native-dtype");
  Case c;
  c.head_dim = 128;
  c.seq_len = n;
  c.center = centre;
  const GridCase gc{case_id(c) + "-s1", c, 1};
  return evaluate_one(*candidate, gc, DType::fp16, resolve_tolerance(DType::fp16, {}, {}));
}

}  // namespace

TEST_CASE("a fp16 scale table overflowing where the outputs would not is named, a precision defect") {
  // native-dtype: cos, sin and the XPOS scale as fp16 tables, every product in fp16.
  // Far from the centre its key scale table overflows while x * sigma with small x
  // would still fit.
  const Record r = native_dtype_fp16(9728);
  CHECK(r.outcome == Outcome::out_of_range);
  REQUIRE(r.diagnosis);
  CHECK(r.diagnosis->verdict == "scale-table-in-dtype");
  CHECK(r.diagnosis->kind == DiagnosisKind::precision);
  CHECK_THAT(r.diagnosis->explanation, Contains("the XPOS scale table sigma^e, multiplying the rotated pair, stored in fp16"));
}

TEST_CASE("a fresh instance that agrees is never the closest misfit") {
  // The same code centred at 0 over 7680 queries: still unexplained, and the fresh
  // instance's own record (its representable rest within tolerance) looked closest
  // while it explained nothing.
  const Record r = native_dtype_fp16(7680, 0);
  CHECK(r.outcome == Outcome::out_of_range);
  REQUIRE(r.diagnosis);
  CHECK(r.diagnosis->verdict == "unexplained");
  CHECK_THAT(r.diagnosis->explanation, Contains("closest:") && !Contains("history-dependence"));
}

TEST_CASE("diagnoses survive the results file, and files without them still read") {
  auto candidate = make_builtin("positions-from-zero");
  auto good = make_builtin("fp32-angles");
  Results results;
  results.records.push_back(evaluate(*candidate, small_case()));
  results.records.push_back(evaluate(*good, small_case()));
  const Diagnosis& d = *results.records[0].diagnosis;
  const fs::path file =
      fs::temp_directory_path() / ("xposcheck-diagnosis-" + std::to_string(::getpid()) + ".json");
  write_results(file, results);
  const Results back = read_results(file);
  REQUIRE(back.records.size() == 2);
  REQUIRE(back.records[0].diagnosis);
  const Diagnosis& e = *back.records[0].diagnosis;
  CHECK(e.verdict == d.verdict);
  CHECK(e.explanation == d.explanation);
  CHECK(e.evidence == d.evidence);
  CHECK(e.estimates.key_shift == d.estimates.key_shift);
  CHECK_FALSE(e.estimates.query_centre.has_value() != d.estimates.query_centre.has_value());
  REQUIRE(e.decomposition.size() == 2);
  REQUIRE(e.decomposition[1].fits.size() == d.decomposition[1].fits.size());
  CHECK(e.decomposition[1].fits[0].angle.intercept ==
        Approx(d.decomposition[1].fits[0].angle.intercept).epsilon(1e-5));
  REQUIRE(e.tried.size() == d.tried.size());
  CHECK(e.tried.back().name == "memory-offset-missing");
  CHECK_FALSE(back.records[1].diagnosis);

  // Records without a diagnosis carry no "diagnosis" key; a file written before
  // diagnoses existed (the key removed everywhere) still reads.
  nlohmann::json j = nlohmann::json::parse(std::ifstream(file));
  std::size_t with_key = 0;
  for (nlohmann::json& record : j.at("records")) {
    with_key += record.contains("diagnosis") ? 1 : 0;
    CHECK(record.contains("diagnosis") == (record.at("candidate") == "positions-from-zero"));
    record.erase("diagnosis");
  }
  CHECK(with_key == 1);
  std::ofstream(file) << j.dump(1);
  const Results old = read_results(file);
  REQUIRE(old.records.size() == 2);
  CHECK_FALSE(old.records[0].diagnosis);
  CHECK(old.records[0].outcome == Outcome::tolerance);
  fs::remove(file);
}

TEST_CASE("an infinity within tolerance of the dtype's largest value is the envelope's edge") {
  // One pair at position 0 (no rotation, no scale): the golden output is the input.
  Case c;
  c.head_dim = 2;
  c.seq_len = 1;
  const Tensor q({1, 1, 1, 2}, {65400, 0}), k({1, 1, 1, 2}, {1, 0});
  const Golden golden = golden_fast(c, q, k);
  const RotaryTables tables(c, 0, 0);
  const Tolerance tol = resolve_tolerance(DType::fp16, {}, {});
  auto judge = [&](double got) {
    const CandidateOutput out{Tensor({1, 1, 1, 2}, {got, 0}), k, "fp16", "fp16"};
    Record record;
    record.params = c;
    record.dtype = DType::fp16;
    compare_outputs(c, DType::fp16, golden, tables, out, tol, record);
    if (record.outcome == Outcome::nonfinite)
      record.diagnosis = diagnose({&c, DType::fp16, &q, &k, &golden, &tables, &tol, &out, {}, false}, record);
    return record;
  };
  // 65400 + 8 ulps of 32 reaches past 65504: a correct rounding may overflow, so the
  // comparison books it as the envelope's edge (the representable rest passes).
  const Record edge = judge(INFINITY);
  CHECK(edge.outcome == Outcome::out_of_range);
  REQUIRE(edge.range);
  CHECK(edge.range->count == 1);
  CHECK(edge.range->in_range_outcome == "PASS");
  // -inf is on the wrong side, and NaN is never within tolerance.
  for (double got : {-INFINITY, NAN}) {
    const Record r = judge(got);
    CHECK(r.outcome == Outcome::nonfinite);
    REQUIRE(r.diagnosis);
    CHECK(r.diagnosis->verdict == "unexplained");
  }
}
