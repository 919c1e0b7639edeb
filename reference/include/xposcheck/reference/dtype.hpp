#pragma once
// The candidate dtypes and their exact rounding from binary64.
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

// Round a binary64 value to the nearest value of t (ties to even), with gradual
// underflow and overflow to infinity; the result is returned exactly as a double.
double round_to(DType t, double x);

// The spacing of t's values at magnitude |x|: 2^(floor(log2|x|) - precision + 1),
// never below the subnormal spacing; for |x| above the largest finite value, the
// spacing at the largest finite value. Non-finite x gives NaN.
double ulp(DType t, double x);

// The same for binary64 (2^-1074 at zero and in the subnormal range).
double ulp_fp64(double x);

// True when |x| does not exceed t's largest finite value (so round_to(t, x) is finite).
bool in_range(DType t, double x);

}  // namespace xposcheck
