#include "xposcheck/reference/dtype.hpp"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>

namespace xposcheck {
namespace {

// Every quantity below is a power of two or a short significand scaled by one, so
// std::ldexp computes it exactly.
DTypeTraits make_traits(int precision, int min_exponent, int max_exponent) {
  const double epsilon = std::ldexp(1.0, 1 - precision);
  return DTypeTraits{precision,
                     min_exponent,
                     max_exponent,
                     (2.0 - epsilon) * std::ldexp(1.0, max_exponent),
                     std::ldexp(1.0, min_exponent),
                     epsilon};
}

const DTypeTraits kFp32 = make_traits(24, -126, 127);
const DTypeTraits kBf16 = make_traits(8, -126, 127);
const DTypeTraits kFp16 = make_traits(11, -14, 15);

// Exponent of the value spacing at |a| (a finite and non-zero): ulp = 2^result.
// Below the normal range the spacing stays that of the smallest normal binade,
// which is what makes underflow gradual.
int spacing_exponent(const DTypeTraits& t, double a) {
  int e = 0;
  std::frexp(a, &e);  // a = m * 2^e with m in [0.5, 1): floor(log2 a) = e - 1
  const int binade = e - 1 < t.min_exponent ? t.min_exponent : e - 1;
  return binade - t.precision + 1;
}

// Rounds r >= 0 to the nearest integer, ties to even. Written out rather than using
// std::nearbyint so that a changed floating-point rounding mode cannot change the
// result. r < 2^53, so floor and the difference are exact.
double round_half_even(double r) {
  const double lower = std::floor(r);
  const double diff = r - lower;
  if (diff > 0.5 || (diff == 0.5 && std::fmod(lower, 2.0) != 0.0)) return lower + 1.0;
  return lower;
}

}  // namespace

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::fp32: return "fp32";
    case DType::bf16: return "bf16";
    case DType::fp16: return "fp16";
  }
  throw std::invalid_argument("dtype_name: unknown dtype");
}

std::optional<DType> parse_dtype(std::string_view name) {
  if (name == "fp32" || name == "float32") return DType::fp32;
  if (name == "bf16" || name == "bfloat16") return DType::bf16;
  if (name == "fp16" || name == "float16" || name == "half") return DType::fp16;
  return std::nullopt;
}

const DTypeTraits& traits(DType t) {
  switch (t) {
    case DType::fp32: return kFp32;
    case DType::bf16: return kBf16;
    case DType::fp16: return kFp16;
  }
  throw std::invalid_argument("traits: unknown dtype");
}

namespace detail {

double round_to_outside_normal(DType dtype, double x) {
  if (!std::isfinite(x) || x == 0.0) return x;  // NaN, +-inf and +-0 pass through
  const DTypeTraits& t = traits(dtype);
  const double a = std::fabs(x);
  // max_finite has an all-ones significand (odd), so the halfway point between it
  // and 2^(emax+1) rounds up to infinity under ties-to-even.
  const double overflow_at = t.max_finite + std::ldexp(1.0, t.max_exponent - t.precision);
  if (a >= overflow_at) return std::copysign(std::numeric_limits<double>::infinity(), x);
  const int q = spacing_exponent(t, a);
  // a / 2^q has at most 53 significant bits and lies far inside the normal binary64
  // range, so both scalings are exact; only round_half_even rounds.
  const double rounded = std::ldexp(round_half_even(std::ldexp(a, -q)), q);
  return std::copysign(rounded, x);  // keeps the sign of values that round to zero
}

}  // namespace detail

double ulp(DType dtype, double x) {
  if (!std::isfinite(x)) return std::numeric_limits<double>::quiet_NaN();
  const DTypeTraits& t = traits(dtype);
  const double a = std::fmin(std::fabs(x), t.max_finite);
  if (a == 0.0) return std::ldexp(1.0, t.min_exponent - t.precision + 1);
  return std::ldexp(1.0, spacing_exponent(t, a));
}

double ulp_fp64(double x) {
  if (!std::isfinite(x)) return std::numeric_limits<double>::quiet_NaN();
  const double a = std::fabs(x);
  if (a < std::numeric_limits<double>::min()) return std::numeric_limits<double>::denorm_min();
  int e = 0;
  std::frexp(a, &e);
  return std::ldexp(1.0, e - 53);
}

bool in_range(DType t, double x) { return std::fabs(x) <= traits(t).max_finite; }

}  // namespace xposcheck
