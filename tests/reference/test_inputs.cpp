#include <cmath>
#include <cstdint>
#include <vector>

#include <catch2/catch.hpp>

#include "xposcheck/reference/inputs.hpp"

using namespace xposcheck;

namespace {

Case small_case() {
  Case c;
  c.head_dim = 4;
  c.seq_len = 3;
  c.mem_len = 2;
  c.batch = 2;
  c.heads = 3;
  return c;
}

}  // namespace

// Published SplitMix64 outputs: any change to the constants or shifts shows here.
TEST_CASE("SplitMix64 reproduces the reference sequence", "[inputs]") {
  SplitMix64 zero(0);
  CHECK(zero.next() == 0xE220A8397B1DCDAFULL);
  CHECK(zero.next() == 0x6E789E6AA1B965F4ULL);
  CHECK(zero.next() == 0x06C45D188009454FULL);
  SplitMix64 rng(1234567);
  CHECK(rng.next() == 6457827717110365317ULL);
  CHECK(rng.next() == 3203168211198807973ULL);
  CHECK(rng.next() == 9817491932198370423ULL);
  CHECK(rng.next() == 4593380528125082431ULL);
  CHECK(rng.next() == 16408922859458223821ULL);
}

// Pinned exactly: these are the numbers every platform must produce.
TEST_CASE("portable_normal gives pinned values", "[inputs]") {
  SplitMix64 one(1);
  CHECK(portable_normal(one) == 2.157965044490993);
  CHECK(portable_normal(one) == -0.8488454590551555);
  CHECK(portable_normal(one) == 0.050416776444762945);
  CHECK(portable_normal(one) == -1.2028497338760644);
  SplitMix64 answer(42);
  CHECK(portable_normal(answer) == -2.1770509199704975);
  CHECK(portable_normal(answer) == -1.4925667005591094);
  CHECK(portable_normal(answer) == -0.49334131577052176);
}

TEST_CASE("portable_normal is a multiple of 2^-32 in [-6, 6] with mean 0 and variance 1",
          "[inputs]") {
  SplitMix64 rng(7);
  const int n = 100000;
  double sum = 0, sum_sq = 0;
  for (int i = 0; i < n; ++i) {
    const double x = portable_normal(rng);
    REQUIRE(std::fabs(x) <= 6.0);
    REQUIRE(std::ldexp(x, 32) == std::round(std::ldexp(x, 32)));
    sum += x;
    sum_sq += x * x;
  }
  const double mean = sum / n;
  CHECK(std::fabs(mean) < 0.02);                   // standard error ~0.003
  CHECK(std::fabs(sum_sq / n - mean * mean - 1.0) < 0.02);  // Irwin-Hall(12): exactly 1
}

TEST_CASE("generate_inputs draws q then k in C order and rounds to the dtype",
          "[inputs]") {
  const Case c = small_case();
  for (DType t : kAllDTypes) {
    INFO(dtype_name(t));
    const Inputs in = generate_inputs(c, 1, t);
    REQUIRE(in.q.shape == Shape{2, 3, 3, 4});
    REQUIRE(in.k.shape == Shape{2, 3, 5, 4});
    SplitMix64 rng(1);
    for (double v : in.q.data) REQUIRE(v == round_to(t, portable_normal(rng)));
    for (double v : in.k.data) REQUIRE(v == round_to(t, portable_normal(rng)));
  }
  CHECK(generate_inputs(c, 1, DType::bf16).q.data[0] == 2.15625);
  CHECK(generate_inputs(c, 1, DType::fp16).q.data[0] == 2.158203125);
  CHECK(generate_inputs(c, 1, DType::fp32).q.data[0] == double(float(2.157965044490993)));
}

TEST_CASE("long tensors, drawn in parallel chunks, follow the same sequence", "[inputs]") {
  Case c;
  c.head_dim = 64;
  c.seq_len = 1500;
  c.mem_len = 700;
  c.heads = 2;  // q 192,000 and k 281,600 values: several chunks each
  for (DType t : kAllDTypes) {
    INFO(dtype_name(t));
    const Inputs in = generate_inputs(c, 7, t);
    SplitMix64 rng(7);
    std::size_t below_normal = 0;  // fp16 draws near zero take round_to's general path
    for (const Tensor* x : {&in.q, &in.k}) {
      for (double v : x->data) {
        const double want = round_to(t, portable_normal(rng));
        REQUIRE(v == want);
        below_normal += std::fabs(want) < traits(t).min_normal ? 1 : 0;
      }
    }
    if (t == DType::fp16) CHECK(below_normal > 0);
  }
}

TEST_CASE("inputs drawn for several dtypes at once are each dtype's own, bit for bit", "[inputs]") {
  Case c;
  c.head_dim = 64;
  c.seq_len = 1500;
  c.mem_len = 700;
  c.heads = 2;  // several chunks, and fp16 draws below its normal range
  const std::vector<std::vector<DType>> orders = {
      {DType::fp32, DType::bf16, DType::fp16}, {DType::fp16, DType::fp32}, {DType::bf16}};
  for (const auto& dtypes : orders) {
    const std::vector<Inputs> together = generate_inputs(c, 7, dtypes);
    REQUIRE(together.size() == dtypes.size());
    for (std::size_t i = 0; i < dtypes.size(); ++i) {
      INFO(dtype_name(dtypes[i]) << " at " << i);
      const Inputs alone = generate_inputs(c, 7, dtypes[i]);
      CHECK(together[i].q.shape == alone.q.shape);
      CHECK(together[i].k.shape == alone.k.shape);
      CHECK(together[i].q.data == alone.q.data);
      CHECK(together[i].k.data == alone.k.data);
    }
  }
  CHECK(generate_inputs(c, 7, std::vector<DType>{}).empty());
}

TEST_CASE("generated values are exactly representable in their dtype", "[inputs]") {
  Case c = small_case();
  c.head_dim = 64;
  c.seq_len = 100;
  for (DType t : kAllDTypes) {
    const Inputs in = generate_inputs(c, 99, t);
    for (const Tensor* x : {&in.q, &in.k}) {
      for (double v : x->data) REQUIRE(round_to(t, v) == v);
    }
  }
}

TEST_CASE("different seeds give different inputs, the same seed the same", "[inputs]") {
  const Case c = small_case();
  CHECK(generate_inputs(c, 5, DType::fp32).q.data == generate_inputs(c, 5, DType::fp32).q.data);
  CHECK(generate_inputs(c, 5, DType::fp32).q.data != generate_inputs(c, 6, DType::fp32).q.data);
}

TEST_CASE("generate_inputs validates the case", "[inputs]") {
  Case c = small_case();
  c.head_dim = 3;
  CHECK_THROWS_AS(generate_inputs(c, 1, DType::fp32), InvalidParameter);
}

TEST_CASE("generate_upstream continues the stream after q and k: g_q, then g_k",
          "[inputs][gradients]") {
  const Case c = small_case();  // q 72 values, k 120
  for (DType t : kAllDTypes) {
    INFO(dtype_name(t));
    const Upstream up = generate_upstream(c, 1, t);
    REQUIRE(up.g_q.shape == Shape{2, 3, 3, 4});
    REQUIRE(up.g_k.shape == Shape{2, 3, 5, 4});
    SplitMix64 rng(1);
    for (int i = 0; i < 72 + 120; ++i) portable_normal(rng);  // the inputs' draws
    for (double v : up.g_q.data) REQUIRE(v == round_to(t, portable_normal(rng)));
    for (double v : up.g_k.data) REQUIRE(v == round_to(t, portable_normal(rng)));
  }
  // Pinned: draw 193 of seed 1 (docs/gradients.md), the first after the inputs.
  CHECK(generate_upstream(c, 1, DType::fp32).g_q.data[0] == double(float(1.1548286876641214)));
}

TEST_CASE("upstream gradients differ from the inputs of the same seed", "[inputs][gradients]") {
  const Case c = small_case();
  const Inputs in = generate_inputs(c, 3, DType::bf16);
  const Upstream up = generate_upstream(c, 3, DType::bf16);
  CHECK(up.g_q.data != in.q.data);
  CHECK(up.g_k.data != in.k.data);
  CHECK(up.g_q.data != generate_upstream(c, 4, DType::bf16).g_q.data);
  Case bad = c;
  bad.head_dim = 3;
  CHECK_THROWS_AS(generate_upstream(bad, 1, DType::fp32), InvalidParameter);
}
