#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "xposcheck/reference/dtype.hpp"

using namespace xposcheck;

namespace {

const double kInf = std::numeric_limits<double>::infinity();

// Decoders written from the format definitions, independent of dtype.cpp, so the
// exhaustive tests compare round_to against the formats and not against itself.
double decode_fp16(std::uint16_t bits) {
  const double sign = (bits & 0x8000) ? -1.0 : 1.0;
  const int exponent = (bits >> 10) & 0x1F;
  const int mantissa = bits & 0x3FF;
  if (exponent == 0x1F) return mantissa ? std::nan("") : sign * kInf;
  if (exponent == 0) return sign * mantissa * std::pow(2.0, -24);
  return sign * (1024 + mantissa) * std::pow(2.0, exponent - 25);
}

double decode_bf16(std::uint16_t bits) {
  const double sign = (bits & 0x8000) ? -1.0 : 1.0;
  const int exponent = (bits >> 7) & 0xFF;
  const int mantissa = bits & 0x7F;
  if (exponent == 0xFF) return mantissa ? std::nan("") : sign * kInf;
  if (exponent == 0) return sign * mantissa * std::pow(2.0, -133);
  return sign * (128 + mantissa) * std::pow(2.0, exponent - 134);
}

double decode(DType t, std::uint16_t bits) {
  return t == DType::fp16 ? decode_fp16(bits) : decode_bf16(bits);
}

// Positive finite values of a 16-bit format in increasing order (bit order).
std::vector<double> positive_values(DType t) {
  std::vector<double> v;
  for (std::uint32_t bits = 0; bits < 0x8000; ++bits) {
    const double x = decode(t, std::uint16_t(bits));
    if (!std::isfinite(x)) break;
    v.push_back(x);
  }
  return v;
}

bool same(double a, double b) {
  return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b);
}

}  // namespace

TEST_CASE("traits of the three dtypes", "[dtype]") {
  CHECK(traits(DType::fp32).precision == 24);
  CHECK(traits(DType::fp32).min_exponent == -126);
  CHECK(traits(DType::fp32).max_exponent == 127);
  CHECK(traits(DType::fp32).max_finite == double(std::numeric_limits<float>::max()));
  CHECK(traits(DType::fp32).min_normal == double(std::numeric_limits<float>::min()));
  CHECK(traits(DType::fp32).epsilon == double(std::numeric_limits<float>::epsilon()));
  CHECK(traits(DType::bf16).precision == 8);
  CHECK(traits(DType::bf16).max_finite == decode_bf16(0x7F7F));
  CHECK(traits(DType::bf16).min_normal == std::ldexp(1.0, -126));
  CHECK(traits(DType::bf16).epsilon == std::ldexp(1.0, -7));
  CHECK(traits(DType::fp16).precision == 11);
  CHECK(traits(DType::fp16).min_exponent == -14);
  CHECK(traits(DType::fp16).max_exponent == 15);
  CHECK(traits(DType::fp16).max_finite == 65504.0);
  CHECK(traits(DType::fp16).min_normal == std::ldexp(1.0, -14));
  CHECK(traits(DType::fp16).epsilon == std::ldexp(1.0, -10));
}

TEST_CASE("round_to's inline constants agree with the traits", "[dtype]") {
  for (DType t : kAllDTypes) {
    const detail::NormalRange range = detail::normal_range(t);
    CAPTURE(dtype_name(t));
    CHECK(range.dropped_bits == 53 - traits(t).precision);
    CHECK(range.min_normal == traits(t).min_normal);
    CHECK(range.max_finite == traits(t).max_finite);
  }
}

TEST_CASE("dtype names parse and print", "[dtype]") {
  for (DType t : kAllDTypes) CHECK(parse_dtype(dtype_name(t)) == t);
  CHECK(parse_dtype("float32") == DType::fp32);
  CHECK(parse_dtype("bfloat16") == DType::bf16);
  CHECK(parse_dtype("float16") == DType::fp16);
  CHECK(parse_dtype("half") == DType::fp16);
  CHECK_FALSE(parse_dtype("fp64"));
  CHECK_FALSE(parse_dtype(""));
  CHECK_FALSE(parse_dtype("FP32"));
}

TEST_CASE("round_to is the identity on every 16-bit pattern", "[dtype]") {
  for (DType t : {DType::bf16, DType::fp16}) {
    INFO(dtype_name(t));
    for (std::uint32_t bits = 0; bits < 0x10000; ++bits) {
      const double x = decode(t, std::uint16_t(bits));
      INFO("bits " << bits);
      if (std::isnan(x)) {
        CHECK(std::isnan(round_to(t, x)));
      } else {
        CHECK(same(round_to(t, x), x));  // signed zero and infinities included
      }
    }
  }
}

TEST_CASE("16-bit midpoints round to the even neighbour", "[dtype]") {
  for (DType t : {DType::bf16, DType::fp16}) {
    INFO(dtype_name(t));
    const std::vector<double> v = positive_values(t);
    for (std::size_t i = 0; i + 1 < v.size(); ++i) {
      const double mid = (v[i] + v[i + 1]) / 2;  // exact: both have few bits
      const double even = i % 2 == 0 ? v[i] : v[i + 1];
      INFO("between " << v[i] << " and " << v[i + 1]);
      REQUIRE(round_to(t, mid) == even);
      REQUIRE(round_to(t, -mid) == -even);
      REQUIRE(round_to(t, std::nextafter(mid, kInf)) == v[i + 1]);
      REQUIRE(round_to(t, std::nextafter(mid, 0.0)) == v[i]);
      REQUIRE(ulp(t, v[i]) == v[i + 1] - v[i]);
    }
  }
}

TEST_CASE("overflow: at and above max + half an ulp gives infinity", "[dtype]") {
  for (DType t : kAllDTypes) {
    INFO(dtype_name(t));
    const DTypeTraits& tr = traits(t);
    const double half_ulp = std::ldexp(1.0, tr.max_exponent - tr.precision);
    const double threshold = tr.max_finite + half_ulp;
    CHECK(round_to(t, threshold) == kInf);  // the tie goes to the even side: infinity
    CHECK(round_to(t, -threshold) == -kInf);
    CHECK(round_to(t, std::nextafter(threshold, 0.0)) == tr.max_finite);
    CHECK(round_to(t, -std::nextafter(threshold, 0.0)) == -tr.max_finite);
    CHECK(round_to(t, std::numeric_limits<double>::max()) == kInf);
    CHECK(round_to(t, kInf) == kInf);
    CHECK(std::isnan(round_to(t, std::nan(""))));
    CHECK(in_range(t, tr.max_finite));
    CHECK(in_range(t, -tr.max_finite));
    CHECK_FALSE(in_range(t, std::nextafter(tr.max_finite, kInf)));
    CHECK_FALSE(in_range(t, kInf));
    CHECK_FALSE(in_range(t, std::nan("")));
  }
  CHECK(round_to(DType::fp16, 65519.99) == 65504.0);
  CHECK(round_to(DType::fp16, 65520.0) == kInf);
}

TEST_CASE("underflow is gradual and keeps the sign of zero", "[dtype]") {
  const double tiny16 = std::ldexp(1.0, -24);  // smallest fp16 subnormal
  CHECK(round_to(DType::fp16, tiny16 / 2) == 0.0);  // tie to even: zero
  CHECK(std::signbit(round_to(DType::fp16, -tiny16 / 2)));
  CHECK(round_to(DType::fp16, std::nextafter(tiny16 / 2, 1.0)) == tiny16);
  CHECK(round_to(DType::fp16, 1.5 * tiny16) == 2 * tiny16);  // tie: 2 is even
  CHECK(round_to(DType::fp16, 2.5 * tiny16) == 2 * tiny16);
  CHECK(round_to(DType::fp16, 1000.4 * tiny16) == 1000 * tiny16);
  const double tiny32 = std::ldexp(1.0, -149);
  CHECK(round_to(DType::fp32, tiny32 / 2) == 0.0);
  CHECK(round_to(DType::fp32, 0.75 * tiny32) == tiny32);
  CHECK(round_to(DType::bf16, std::ldexp(1.0, -133)) == std::ldexp(1.0, -133));
  CHECK(round_to(DType::bf16, std::ldexp(1.0, -134)) == 0.0);
  CHECK(round_to(DType::bf16, std::ldexp(3.0, -135)) == std::ldexp(1.0, -133));
  const double d = std::numeric_limits<double>::denorm_min();
  for (DType t : kAllDTypes) {
    CHECK(same(round_to(t, d), 0.0));
    CHECK(same(round_to(t, -d), -0.0));
    CHECK(same(round_to(t, -0.0), -0.0));
  }
}

TEST_CASE("fp32 rounding agrees with the hardware conversion", "[dtype]") {
  std::mt19937_64 rng(20240611);
  std::uniform_int_distribution<int> exponent(-160, 140);
  std::uniform_real_distribution<double> mantissa(-2.0, 2.0);
  for (int i = 0; i < 400000; ++i) {
    const double x = std::ldexp(mantissa(rng), exponent(rng));
    INFO(x);
    REQUIRE(same(round_to(DType::fp32, x), double(float(x))));
  }
  for (int i = 0; i < 400000; ++i) {  // arbitrary bit patterns, NaN excepted
    const double x = std::bit_cast<double>(rng());
    if (std::isnan(x)) continue;
    INFO(x);
    REQUIRE(same(round_to(DType::fp32, x), double(float(x))));
  }
  for (int i = 0; i < 400000; ++i) {  // exact float midpoints, including subnormal ones
    const float f = std::bit_cast<float>(std::uint32_t(rng()) & 0x7FFFFFFFu);
    if (!(f < std::numeric_limits<float>::max())) continue;  // no finite upper neighbour
    const double mid = (double(f) + double(std::nextafter(f, HUGE_VALF))) / 2;
    INFO(mid);
    REQUIRE(same(round_to(DType::fp32, mid), double(float(mid))));
  }
}

TEST_CASE("ulp at powers of two, in the subnormal range and beyond max", "[dtype]") {
  CHECK(ulp(DType::fp32, 1.0) == std::ldexp(1.0, -23));
  CHECK(ulp(DType::fp32, std::nextafter(1.0, 0.0)) == std::ldexp(1.0, -24));
  CHECK(ulp(DType::fp32, -1024.0) == std::ldexp(1.0, -13));
  CHECK(ulp(DType::bf16, 1.0) == std::ldexp(1.0, -7));
  CHECK(ulp(DType::bf16, 256.0) == 2.0);
  CHECK(ulp(DType::fp16, 1.0) == std::ldexp(1.0, -10));
  CHECK(ulp(DType::fp16, 2048.0) == 2.0);
  CHECK(ulp(DType::fp16, 65504.0) == 32.0);
  CHECK(ulp(DType::fp16, 1e9) == 32.0);
  CHECK(ulp(DType::fp16, 0.0) == std::ldexp(1.0, -24));
  CHECK(ulp(DType::fp16, std::ldexp(1.0, -14)) == std::ldexp(1.0, -24));
  CHECK(ulp(DType::fp16, std::ldexp(1.0, -20)) == std::ldexp(1.0, -24));
  CHECK(ulp(DType::fp32, 1e-45) == std::ldexp(1.0, -149));
  CHECK(ulp(DType::bf16, 0.0) == std::ldexp(1.0, -133));
  CHECK(ulp(DType::fp32, 1e300) == std::ldexp(1.0, 104));
  CHECK(std::isnan(ulp(DType::fp32, kInf)));
  CHECK(std::isnan(ulp(DType::fp16, std::nan(""))));
  CHECK(ulp_fp64(1.0) == std::ldexp(1.0, -52));
  CHECK(ulp_fp64(-3.0) == std::ldexp(1.0, -51));
  CHECK(ulp_fp64(std::nextafter(1.0, 0.0)) == std::ldexp(1.0, -53));
  CHECK(ulp_fp64(0.0) == std::numeric_limits<double>::denorm_min());
  CHECK(ulp_fp64(std::numeric_limits<double>::min()) == std::numeric_limits<double>::denorm_min());
  CHECK(ulp_fp64(1e-310) == std::numeric_limits<double>::denorm_min());
  CHECK(ulp_fp64(std::numeric_limits<double>::max()) == std::ldexp(1.0, 971));
  CHECK(std::isnan(ulp_fp64(-kInf)));
}
