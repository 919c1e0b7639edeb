// The double-double fast path against the 128-bit multiprecision path on a grid of
// small cases that exercises every parameter: each element within 1 fp64 ulp of its
// pair magnitude, pass-through features bit-exact, logits within 4 ulps of sum |q k|;
// the judging route's outputs (the tables' high words) within 6 ulps.
#include <catch2/catch.hpp>

#include "golden_compare.hpp"
#include "xposcheck/reference/golden.hpp"
#include "xposcheck/reference/inputs.hpp"

namespace {

using namespace xposcheck;

Case make(long d, long n, long m) {
  Case c;
  c.head_dim = d;
  c.seq_len = n;
  c.mem_len = m;
  return c;
}

// Small enough for the exact path; together a few seconds.
std::vector<Case> grid() {
  std::vector<Case> cases;
  for (long n : {1L, 4L, 7L})
    for (long m : {0L, 1L, 5L, 37L})
      for (Layout l : {Layout::half, Layout::interleaved}) {
        Case c = make(8, n, m);
        c.layout = l;
        cases.push_back(c);
      }
  Case c = make(16, 6, 5);  // partial rotary, both layouts
  c.rotary_dim = 10;
  cases.push_back(c);
  c.layout = Layout::interleaved;
  cases.push_back(c);
  c = make(8, 5, 3);  // xpos off
  c.xpos = false;
  cases.push_back(c);
  c = make(12, 4, 6);  // NTK rescale and interpolation, non-default base
  c.base_rescale = 3.5;
  c.interpolation = 2.0;
  c.base = 500000.0;
  cases.push_back(c);
  c = make(8, 5, 2);  // non-default centres and a small scale base
  for (long centre : {-40L, 0L, 9L}) {
    c.center = centre;
    c.scale_base = 8.0;
    cases.push_back(c);
  }
  c = make(8, 3, 4);  // batch and heads
  c.batch = 2;
  c.heads = 3;
  cases.push_back(c);
  c = make(8, 3, 3000);  // long memory: positions down to -3000
  cases.push_back(c);
  c = make(4, 2500, 0);  // long segment, large angles, centre 1250
  c.layout = Layout::interleaved;
  cases.push_back(c);
  c = make(2, 9, 4);  // R = 2, a single pair
  cases.push_back(c);
  return cases;
}

// Both output tensors of got within `bound` fp64 ulps of the pair magnitudes of exact.
void check_outputs(const Case& c, const Golden& got, const Golden& exact, double bound) {
  const auto wq = testing::compare_outputs(c, "q_out", got.q_out, exact.q_out);
  INFO(wq.where);
  CHECK(wq.ulps <= bound);
  const auto wk = testing::compare_outputs(c, "k_out", got.k_out, exact.k_out);
  INFO(wk.where);
  CHECK(wk.ulps <= bound);
}

// The judging route (GoldenOptions::correctly_rounded false): cos, sin and the scale
// each within 2^-53 of their values, the fma and product rounding once each, so every
// element is within 5 2^-53 r sigma of its exact value (r sigma its pair magnitude),
// less than 5 ulps of it, plus the exact path's own half ulp.
void check_judging_route(const Case& c, const Inputs& in, const Golden& exact) {
  GoldenOptions judging(false, 0);
  judging.correctly_rounded = false;
  check_outputs(c, golden_fast(c, in.q, in.k, judging), exact, 6.0);
}

void check(const Case& c, DType t, std::uint64_t seed) {
  const Inputs in = generate_inputs(c, seed, t);
  const Golden fast = golden_fast(c, in.q, in.k);
  const Golden exact = golden_exact(c, in.q, in.k);
  INFO(case_id(c) << " " << dtype_name(t));
  check_outputs(c, fast, exact, 1.0);
  REQUIRE(fast.logit_rows == exact.logit_rows);
  const auto mags = testing::logit_magnitudes(exact.q_out, exact.k_out, exact.logit_rows);
  const auto wl = testing::compare_logits(fast.logits, exact.logits, mags);
  INFO(wl.where);
  CHECK(wl.ulps <= 4.0);
  check_judging_route(c, in, exact);
}

}  // namespace

TEST_CASE("fast and exact golden paths agree on a grid of small cases", "[golden][fast]") {
  std::uint64_t seed = 100;
  for (const Case& c : grid()) check(c, DType::fp32, ++seed);
}

TEST_CASE("fast and exact golden paths agree on bf16 and fp16 inputs", "[golden][fast]") {
  Case c = make(8, 5, 6);
  c.layout = Layout::interleaved;
  check(c, DType::bf16, 7);
  check(c, DType::fp16, 8);
}

TEST_CASE("logit row sampling keeps first and last rows, evenly spread", "[golden][logits]") {
  CHECK(logit_rows(5, 512) == std::vector<long>{0, 1, 2, 3, 4});
  CHECK(logit_rows(5, 0) == std::vector<long>{0, 1, 2, 3, 4});
  CHECK(logit_rows(10, 4) == std::vector<long>{0, 3, 6, 9});
  CHECK(logit_rows(8192, 512).size() == 512);
  CHECK(logit_rows(8192, 512).front() == 0);
  CHECK(logit_rows(8192, 512).back() == 8191);
  CHECK(logit_rows(10, 1) == std::vector<long>{0});
}

TEST_CASE("sampled logits rows of the fast path are the rows asked for", "[golden][logits]") {
  Case c = make(8, 40, 3);
  const Inputs in = generate_inputs(c, 3, DType::fp32);
  const Golden all = golden_fast(c, in.q, in.k, {true, 0});
  const Golden some = golden_fast(c, in.q, in.k, {true, 5});
  REQUIRE(some.logit_rows == std::vector<long>{0, 9, 19, 29, 39});
  REQUIRE(some.logits.shape == (Shape{1, 1, 5, 43}));
  for (std::size_t i = 0; i < some.logit_rows.size(); ++i)
    for (std::size_t n = 0; n < 43; ++n)
      CHECK(some.logits.row(i)[n] == all.logits.row(some.logit_rows[i])[n]);
  CHECK(golden_fast(c, in.q, in.k, {false, 512}).logits.size() == 0);
}

TEST_CASE("the judging route rounds differently from the published one, within its bound", "[golden][fast]") {
  Case c = make(64, 40, 500);
  c.rotary_dim = 48;
  const Inputs in = generate_inputs(c, 3, DType::fp32);
  const Golden rounded = golden_fast(c, in.q, in.k, GoldenOptions(false, 0));
  GoldenOptions judging(false, 0);
  judging.correctly_rounded = false;
  const Golden plain = golden_fast(c, in.q, in.k, judging);
  std::size_t differ = 0;
  for (std::size_t e = 0; e < plain.k_out.size(); ++e) differ += plain.k_out.data[e] != rounded.k_out.data[e];
  CHECK(differ > plain.k_out.size() / 20);  // a separate route, not the same one
  const auto wk = testing::compare_outputs(c, "k_out", plain.k_out, rounded.k_out);
  INFO(wk.where);
  CHECK(wk.ulps <= 6.0);  // pass-through features bit-exact, as compare_outputs demands
}
