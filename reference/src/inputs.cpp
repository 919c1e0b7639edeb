#include "xposcheck/reference/inputs.hpp"

#include <cmath>

namespace xposcheck {

std::uint64_t SplitMix64::next() {
  std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// The twelve 32-bit integers are summed as integers (at most 36 bits), then scaled
// by 2^-32 and shifted by 6: both steps are exact in binary64, so no rounding, FMA
// contraction or summation order can change the result.
double portable_normal(SplitMix64& rng) {
  std::uint64_t sum = 0;
  for (int i = 0; i < 6; ++i) {
    const std::uint64_t bits = rng.next();
    sum += bits >> 32;
    sum += bits & 0xFFFFFFFFULL;
  }
  return std::ldexp(static_cast<double>(sum), -32) - 6.0;
}

namespace {

void fill(Tensor& t, SplitMix64& rng, DType dtype) {
  for (double& v : t.data) v = round_to(dtype, portable_normal(rng));
}

}  // namespace

Inputs generate_inputs(const Case& c, std::uint64_t seed, DType dtype) {
  validate(c);
  SplitMix64 rng(seed);
  Inputs in{Tensor(c.q_shape()), Tensor(c.k_shape())};
  fill(in.q, rng, dtype);
  fill(in.k, rng, dtype);
  return in;
}

}  // namespace xposcheck
