#pragma once
// The candidate dtypes and their exact rounding from binary64.
#include <bit>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace xposcheck {

enum class DType { fp32, bf16, fp16 };

inline constexpr DType kAllDTypes[] = {DType::fp32, DType::bf16, DType::fp16};

std::string_view dtype_name(DType t);                       // "fp32", "bf16", "fp16"
std::optional<DType> parse_dtype(std::string_view name);    // also accepts float32/bfloat16/float16

struct DTypeTraits {
  int precision;        // significand bits including the implicit one: 24, 8, 11
  int min_exponent;     // exponent of the smallest normal: -126, -126, -14
  int max_exponent;     // exponent of the largest finite: 127, 127, 15
  double max_finite;
  double min_normal;
  double epsilon;       // 2^(1 - precision)
};
const DTypeTraits& traits(DType t);

namespace detail {
// Everything round_to's inline path needs, as constants: the bits binary64 has beyond
// t's significand and t's normal range.
struct NormalRange {
  int dropped_bits;
  double min_normal, max_finite;
};
constexpr NormalRange normal_range(DType t) {
  switch (t) {
    case DType::fp32: return {29, 0x1p-126, 0x1.fffffep127};
    case DType::bf16: return {45, 0x1p-126, 0x1.fep127};
    case DType::fp16: return {42, 0x1p-14, 0x1.ffcp15};
  }
  return {0, 0, 0};
}
// Zero, non-finite, subnormal and overflowing values.
double round_to_outside_normal(DType t, double x);
// x rounded to nearest-even at `dropped_bits` below binary64's significand, on the bit
// pattern: exact wherever the result is normal in the target (a carry out of the
// significand correctly bumps the exponent). Branch-free, so loops over it vectorize.
inline double round_normal_bits(double x, int dropped_bits) {
  auto bits = std::bit_cast<std::uint64_t>(x);
  bits += ((std::uint64_t{1} << (dropped_bits - 1)) - 1) + ((bits >> dropped_bits) & 1);
  bits &= ~((std::uint64_t{1} << dropped_bits) - 1);
  return std::bit_cast<double>(bits);
}
}  // namespace detail

// Round a binary64 value to the nearest value of t (ties to even), with gradual
// underflow and overflow to infinity; the result is returned exactly as a double.
// Inline because candidates call it for every product: in t's normal range the
// rounding is done on the bit pattern, where t's significand is a prefix of
// binary64's.
inline double round_to(DType t, double x) {
  const detail::NormalRange range = detail::normal_range(t);
  const double a = x < 0 ? -x : x;
  if (!(a >= range.min_normal && a <= range.max_finite))
    return detail::round_to_outside_normal(t, x);
  return detail::round_normal_bits(x, range.dropped_bits);
}

// The spacing of t's values at magnitude |x|: 2^(floor(log2|x|) - precision + 1),
// never below the subnormal spacing; for |x| above the largest finite value, the
// spacing at the largest finite value. Non-finite x gives NaN.
double ulp(DType t, double x);

// The same for binary64 (2^-1074 at zero and in the subnormal range).
double ulp_fp64(double x);

// True when |x| does not exceed t's largest finite value (so round_to(t, x) is finite).
bool in_range(DType t, double x);

}  // namespace xposcheck
