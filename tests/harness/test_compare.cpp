// compare_outputs: shapes and dtypes first, then values in dtype ulps at the pair
// magnitude, with the worst element located exactly.
#include <catch2/catch.hpp>

#include <cmath>

#include "harness_fixtures.hpp"
#include "xposcheck/harness/compare.hpp"
#include "xposcheck/reference/inputs.hpp"

using namespace xposcheck;
using testing::tensor;
using namespace xposcheck::testing;

namespace {

struct Fixture {
  Case c;
  DType dtype;
  Inputs inputs;
  Golden golden;
  std::shared_ptr<const RotaryTables> tables;
  CandidateOutput exact;  // the golden outputs rounded to the dtype: a perfect candidate

  Fixture(Case params, DType t) : c(params), dtype(t), inputs(generate_inputs(c, 7, t)) {
    golden = golden_fast(c, inputs.q, inputs.k);
    tables = shared_tables(c);
    exact.q_out = golden.q_out;
    exact.k_out = golden.k_out;
    for (double& v : exact.q_out.data) v = round_to(t, v);
    for (double& v : exact.k_out.data) v = round_to(t, v);
    exact.q_dtype = exact.k_dtype = std::string(dtype_name(t));
  }
  Record compare(const CandidateOutput& out, const CompareOptions& options = {}) const {
    Record r;
    compare_outputs(c, dtype, golden, *tables, out, default_tolerance(dtype), r, options);
    return r;
  }
};

Case small_case(long n = 12, long m = 5) {
  Case c;
  c.head_dim = 8;
  c.rotary_dim = 6;
  c.seq_len = n;
  c.mem_len = m;
  return c;
}

}  // namespace

TEST_CASE("the golden outputs rounded to the dtype pass with at most half an ulp") {
  for (DType t : kAllDTypes) {
    const Fixture f(small_case(), t);
    const Record r = f.compare(f.exact);
    INFO(r.message);
    CHECK(r.outcome == Outcome::pass);
    CHECK(tensor(r, "q_out").max_ulps <= 0.5);
    CHECK(tensor(r, "k_out").max_ulps <= 0.5);
    CHECK(tensor(r, "logits").compared);
    CHECK(tensor(r, "q_out").elements == 12 * 8);
    CHECK(tensor(r, "k_out").elements == 17 * 8);
  }
}

TEST_CASE("a wrong shape is a DIM_MISMATCH naming the tensor, both shapes and the sizes") {
  const Fixture f(small_case(), DType::fp32);
  CandidateOutput out = f.exact;
  out.q_out = Tensor(Shape{1, 1, 17, 8});
  const Record r = f.compare(out);
  CHECK(r.outcome == Outcome::dim_mismatch);
  REQUIRE(r.shape);
  CHECK(r.shape->tensor == "q_out");
  CHECK(r.shape->expected == "[1, 1, 12, 8]");
  CHECK(r.shape->actual == "[1, 1, 17, 8]");
  CHECK(r.shape->relation == "17 = M + N");
}

TEST_CASE("a wrong dtype is reported as a DIM_MISMATCH of kind dtype") {
  const Fixture f(small_case(), DType::bf16);
  CandidateOutput out = f.exact;
  out.k_dtype = "fp32";
  const Record r = f.compare(out);
  CHECK(r.outcome == Outcome::dim_mismatch);
  REQUIRE(r.shape);
  CHECK(r.shape->what == "dtype");
  CHECK(r.shape->tensor == "k_out");
  CHECK(r.shape->expected == "bf16");
}

TEST_CASE("NaN where the golden value is finite is NONFINITE with its first index") {
  const Fixture f(small_case(), DType::fp16);
  CandidateOutput out = f.exact;
  out.k_out.data[3 * 8 + 2] = std::nan("");
  out.k_out.data[9 * 8 + 1] = INFINITY;
  const Record r = f.compare(out);
  CHECK(r.outcome == Outcome::nonfinite);
  const TensorStats& k = tensor(r, "k_out");
  CHECK(k.nonfinite == 2);
  REQUIRE(k.first_nonfinite);
  CHECK(k.first_nonfinite->row == 3);
  CHECK(k.first_nonfinite->feature == 2);
  CHECK(k.first_nonfinite->position == 3 - 5);
  CHECK_FALSE(tensor(r, "logits").compared);
}

TEST_CASE("one element off by many ulps: TOLERANCE with its exact coordinates") {
  const Fixture f(small_case(), DType::bf16);
  CandidateOutput out = f.exact;
  const long row = 7, feature = 4;  // half layout, R = 6: feature 4 = pair 1's b
  double& v = out.q_out.data[row * 8 + feature];
  v = round_to(DType::bf16, v + 40 * ulp(DType::bf16, v));
  const Record r = f.compare(out);
  INFO(r.message);
  CHECK(r.outcome == Outcome::tolerance);
  const TensorStats& q = tensor(r, "q_out");
  CHECK(q.over_tolerance == 1);
  CHECK(q.worst.row == row);
  CHECK(q.worst.feature == feature);
  CHECK(q.worst.pair == 1);
  CHECK(q.worst.position == row);
  CHECK(q.worst.error_ulps > 20);
  CHECK(r.message.find("row 7 feature 4") != std::string::npos);
  // The logits of that query row see the error too.
  CHECK(tensor(r, "logits").worst.row == row);
}

// The largest relative error |got - want| / |golden pair| over a tensor, directly.
double brute_force_max_rel(const Case& c, const Tensor& golden, const Tensor& got) {
  double largest = 0;
  for (std::size_t r = 0; r < golden.rows(); ++r) {
    const double* g = golden.row(r);
    const double* x = got.row(r);
    for (long i = 0; i < c.head_dim; ++i) {
      const long j = i < c.rotary() ? (i % c.pairs()) : -1;
      const double magnitude = j >= 0 ? std::hypot(g[c.pair_a(j)], g[c.pair_b(j)]) : std::fabs(g[i]);
      if (magnitude > 0) largest = std::max(largest, std::fabs(x[i] - g[i]) / magnitude);
    }
  }
  return largest;
}

TEST_CASE("the largest relative error is exact whichever row holds it") {
  // Rows whose errors cannot beat the maximum so far skip the exact division: perturb
  // rows in decreasing, then increasing order of size and compare with brute force.
  const Fixture f(small_case(40, 9), DType::fp32);
  for (bool increasing : {false, true}) {
    CandidateOutput out = f.exact;
    for (long row = 0; row < 40; ++row) {
      const double step = increasing ? row + 1 : 40 - row;
      double& v = out.q_out.data[static_cast<std::size_t>(row * 8 + row % 6)];
      v = round_to(DType::fp32, v + step * 3 * ulp(DType::fp32, v));
    }
    const Record r = f.compare(out);
    const TensorStats& q = tensor(r, "q_out");
    INFO((increasing ? "increasing" : "decreasing"));
    CHECK(q.max_rel == Approx(brute_force_max_rel(f.c, f.golden.q_out, out.q_out)).epsilon(1e-14));
    CHECK(tensor(r, "k_out").max_rel ==
          Approx(brute_force_max_rel(f.c, f.golden.k_out, out.k_out)).epsilon(1e-14));
  }
}

TEST_CASE("pass-through features must come back exactly") {
  const Fixture f(small_case(), DType::fp32);
  CandidateOutput out = f.exact;
  out.k_out.data[2 * 8 + 7] *= 1.5;  // feature 7 >= R = 6
  const Record r = f.compare(out);
  CHECK(r.outcome == Outcome::tolerance);
  CHECK(tensor(r, "k_out").worst.pair == -1);
  CHECK(tensor(r, "k_out").worst.feature == 7);
}

TEST_CASE("golden values beyond fp16 are OUT_OF_RANGE, not a failure of the candidate") {
  Case c = small_case(10000, 0);
  c.head_dim = 2;
  c.rotary_dim = 2;
  const Fixture f(c, DType::fp16);
  CandidateOutput out = f.exact;  // holds inf where the golden value overflows fp16
  const Record r = f.compare(out);
  INFO(r.message);
  CHECK(r.outcome == Outcome::out_of_range);
  REQUIRE(r.range);
  // Queries below the centre and keys above it grow like 3.5^(|p - c| / 512): with
  // inputs of a few units, fp16 overflows some 4000-4600 positions from the centre.
  CHECK((r.range->tensor == "q_out" || r.range->tensor == "k_out"));
  CHECK(r.range->count > 0);
  const long distance = std::labs(r.range->first_position - c.centre());
  CHECK(distance > 3500);
  CHECK(distance < 4600);
  CHECK(r.range->in_range_outcome == "PASS");
  CHECK_FALSE(fails_gate(r.outcome));
  CHECK(fails_gate(r.outcome, GatePolicy{.out_of_range_fails = true}));
}

TEST_CASE("pairs scaled below fp16's normal range are range, not error, beside the rest of their row") {
  // Keys down to -6000 scaled by zeta_j^((c - p) / B): the fast-decaying pairs of the
  // far keys fall below fp16's smallest normal (2^-14), the slow ones do not.
  Case c = small_case(4, 6000);
  c.rotary_dim = 8;
  c.layout = GENERATE(Layout::half, Layout::interleaved);
  INFO("layout " << (c.layout == Layout::half ? "half" : "interleaved"));
  const Fixture f(c, DType::fp16);
  const auto below_normal = [&](long key_row, long j) {
    const double p = static_cast<double>(c.key_position(key_row));
    const double zeta = (2.0 * static_cast<double>(j) + 0.4 * 8) / (1.4 * 8);
    return -(p - static_cast<double>(c.centre())) / c.scale_base * std::log2(zeta) < -14;
  };
  std::size_t masked = 0;
  for (long row = 0; row < c.key_rows(); ++row)
    for (long j = 0; j < c.pairs(); ++j) masked += below_normal(row, j) ? 2 : 0;
  REQUIRE(masked > 0);
  REQUIRE(below_normal(0, 0));
  REQUIRE_FALSE(below_normal(0, 3));  // row 0 (p = -6000) holds both kinds

  const Record exact = f.compare(f.exact);
  REQUIRE(exact.range);
  CHECK(exact.range->tensor == "k_out");
  CHECK(exact.range->count == masked);
  const TensorStats& k = tensor(exact, "k_out");
  CHECK(k.elements == f.exact.k_out.data.size() - masked);

  // A wild value in a pair below normal changes nothing the statistics count.
  CandidateOutput wild = f.exact;
  wild.k_out.data[c.pair_a(0)] *= 100;
  const Record w = f.compare(wild);
  const TensorStats& kw = tensor(w, "k_out");
  CHECK(w.outcome == exact.outcome);
  CHECK(w.range->count == masked);
  CHECK(kw.elements == k.elements);
  CHECK(kw.max_ulps == k.max_ulps);
  CHECK(kw.mean_ulps == k.mean_ulps);
  CHECK(kw.max_rel == k.max_rel);
  CHECK(kw.over_tolerance == 0);

  // An error in a pair of the same row that is in range is found where it is.
  CandidateOutput off = wild;
  double& v = off.k_out.data[c.pair_b(3)];
  v = round_to(DType::fp16, v + 40 * ulp(DType::fp16, v));
  const Record r = f.compare(off);
  INFO(r.message);
  CHECK(r.outcome == Outcome::out_of_range);
  CHECK(r.range->in_range_outcome == "TOLERANCE");
  const TensorStats& kr = tensor(r, "k_out");
  CHECK(kr.over_tolerance == 1);
  CHECK(kr.worst.row == 0);
  CHECK(kr.worst.pair == 3);
  CHECK(kr.worst.feature == c.pair_b(3));
  CHECK(kr.worst.error_ulps > 10);  // 40 ulps of the element, at its larger pair's ulp
}

TEST_CASE("the error curve covers every position of the tensor") {
  const Fixture f(small_case(40, 9), DType::fp32);
  const Record r = f.compare(f.exact);
  const TensorStats& k = tensor(r, "k_out");
  REQUIRE(!k.curve.empty());
  CHECK(k.curve.front().first == -9);
  CHECK(k.curve.back().last == 39);
  for (std::size_t i = 1; i < k.curve.size(); ++i) CHECK(k.curve[i].first == k.curve[i - 1].last + 1);
}

TEST_CASE("the position-aware allowance grows with the angle and the scale") {
  const Tolerance fp32 = default_tolerance(DType::fp32);
  CHECK(fp32.allowance(0, 0) == Approx(8));
  CHECK(fp32.allowance(4096, 0) == Approx(8 + 4 * 4096));
  const Tolerance bf16 = default_tolerance(DType::bf16);
  // An fp32 angle error at phi = 4096 is 4096 * 2^-24 rad: 1/16 of a bf16 ulp, times 4.
  CHECK(bf16.allowance(-4096, 0) == Approx(8 + 4 * 4096.0 / 65536));
  // An XPOS exponent of 20: zeta^20 with zeta off by 2^-24 is off by 20 * 2^-24.
  CHECK(bf16.allowance(0, -20.0) == Approx(8 + 4 * 20.0 / 65536));
}

TEST_CASE("the relative rule allows k times the fp32-angles error plus a floor") {
  ToleranceOverrides relative;
  relative.all.rule = ToleranceRule::relative;
  const Tolerance tol = resolve_tolerance(DType::bf16, {}, relative);
  CHECK(tol.rule == ToleranceRule::relative);
  const GridCase gc = grid_case(32, 300, 20);
  const CandidateFactory yardstick = [] { return make_builtin("fp32-angles"); };
  auto native = make_builtin("native-dtype");
  const Record r = evaluate_one(*native, gc, DType::bf16, tol, kSweepLogitRows, {}, yardstick);
  INFO(r.message);
  // native-dtype rounds every product: more error than fp32-angles, but within 2x + 2.
  CHECK(r.outcome == Outcome::pass);
  auto wrong = make_builtin("angles-in-dtype");
  CHECK(evaluate_one(*wrong, gc, DType::bf16, tol, kSweepLogitRows, {}, yardstick).outcome ==
        Outcome::tolerance);
}

TEST_CASE("candidates are judged against the judging route's golden values, to the same verdict") {
  // Outputs from the tables' high words and logits by plain fp64 products, against the
  // published route's correctly rounded outputs and Dot2 logits.
  const Case c = small_case(40, 24);
  CHECK(judging_golden_options(c, 16).max_logit_rows == logit_rows_for(c, 16));
  CHECK_FALSE(judging_golden_options(c, 16).double_double_logits);
  CHECK_FALSE(judging_golden_options(c, 16).correctly_rounded);
  for (const DType t : kAllDTypes) {
    INFO(dtype_name(t));
    const Fixture f(c, t);
    const Golden judging = golden_fast(c, f.inputs.q, f.inputs.k, judging_golden_options(c, 0));
    REQUIRE(judging.logit_rows == f.golden.logit_rows);
    CandidateOutput off = f.exact;  // one query element off by 2^-8 of itself: failing logits
    off.q_out.data[3 * 8] *= 1 + 0x1p-8;
    for (const CandidateOutput& out : {f.exact, off}) {
      const Record published = f.compare(out);
      Record judged;
      compare_outputs(c, t, judging, *f.tables, out, default_tolerance(t), judged);
      CHECK(judged.outcome == published.outcome);
      REQUIRE(judged.tensors.size() == published.tensors.size());
      REQUIRE(judged.tensors.back().name == "logits");
      for (std::size_t i = 0; i < judged.tensors.size(); ++i) {
        const TensorStats& a = published.tensors[i];
        const TensorStats& b = judged.tensors[i];
        INFO(b.name);
        CHECK(b.over_tolerance == a.over_tolerance);
        CHECK(b.max_ulps == Approx(a.max_ulps).epsilon(1e-6).margin(1e-6));
        CHECK(b.mean_ulps == Approx(a.mean_ulps).epsilon(1e-6).margin(1e-6));
      }
    }
  }
}

TEST_CASE("q_out and k_out compared side by side give what one after the other gives") {
  // Large enough to be compared side by side; fp16 overflows in both tensors.
  const Case c = small_case(12000, 4000);
  const Fixture f(c, DType::fp16);
  CandidateOutput out = f.exact;
  out.q_out.data[7 * 8 + 1] *= 1 + 0x1p-6;  // and one wrong value
  const Record side = f.compare(out);
  OutputComparer one(c, DType::fp16, *f.tables, default_tolerance(DType::fp16), f.golden.logit_rows);
  one.add_query_rows(0, c.seq_len, f.golden.q_out.data.data(), out.q_out.data.data());
  one.add_key_rows(0, c.key_rows(), f.golden.k_out.data.data(), out.k_out.data.data());
  Record after;
  one.finish(after);
  INFO(side.message);
  CHECK(side.outcome == Outcome::out_of_range);
  CHECK(side.outcome == after.outcome);
  CHECK(side.message == after.message);
  REQUIRE(side.range);
  REQUIRE(after.range);
  CHECK(side.range->count == after.range->count);
  CHECK(side.range->first_position == after.range->first_position);
  CHECK(side.range->tensor == after.range->tensor);
  CHECK(side.range->largest_golden == after.range->largest_golden);
  CHECK(side.range->in_range_outcome == after.range->in_range_outcome);
  REQUIRE(side.tensors.size() == after.tensors.size());
  for (std::size_t t = 0; t < side.tensors.size(); ++t) {
    CHECK(side.tensors[t].max_ulps == after.tensors[t].max_ulps);
    CHECK(side.tensors[t].mean_ulps == after.tensors[t].mean_ulps);
    CHECK(side.tensors[t].over_tolerance == after.tensors[t].over_tolerance);
  }
}
