#include "xposcheck/reference/inputs.hpp"

#include <bit>
#include <cmath>

#include "parallel.hpp"

namespace xposcheck {

namespace {

constexpr std::uint64_t kGamma = 0x9E3779B97F4A7C15ULL;

inline std::uint64_t mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// sum (< 2^36) as a double, exactly, without an int-to-double conversion the vector
// units may lack: 2^52 + sum has sum as its low significand bits.
inline double exact_double(std::uint64_t sum) {
  return std::bit_cast<double>(sum | 0x4330000000000000ULL) - 0x1p52;
}

inline double normal_from_sum(std::uint64_t sum) { return exact_double(sum) * 0x1p-32 - 6.0; }

}  // namespace

std::uint64_t SplitMix64::next() { return mix(state_ += kGamma); }

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
  return normal_from_sum(sum);
}

namespace {

// Draws n values of portable_normal as if SplitMix64(seed) had already made
// first_call calls: its state after j calls is seed + j * gamma, so every draw is a
// function of its index and the loop has no carried state (it vectorizes). Draws in
// the dtype's normal range are rounded to it here, as round_to does there (|draw| <= 6
// never overflows); the rest, near zero, are left for round_to.
__attribute__((target_clones("arch=x86-64-v4", "avx2", "default"))) void draw_normals(
    std::uint64_t seed, std::uint64_t first_call, double* out, std::size_t n,
    detail::NormalRange range) {
  for (std::size_t e = 0; e < n; ++e) {
    const std::uint64_t base = seed + (first_call + 6 * e) * kGamma;
    std::uint64_t sum = 0;
    for (std::uint64_t k = 1; k <= 6; ++k) {
      const std::uint64_t bits = mix(base + k * kGamma);
      sum += (bits >> 32) + (bits & 0xFFFFFFFFULL);
    }
    const double v = normal_from_sum(sum);
    const double rounded = detail::round_normal_bits(v, range.dropped_bits);
    out[e] = std::fabs(v) >= range.min_normal ? rounded : v;
  }
}

// The draws of t's elements, which follow `first_call` earlier calls, rounded to dtype.
void fill(Tensor& t, std::uint64_t seed, std::uint64_t first_call, DType dtype) {
  double* data = t.data.data();
  const detail::NormalRange range = detail::normal_range(dtype);
  parallel_for(static_cast<long>(t.data.size()), 1 << 16, [&](long begin, long end) {
    draw_normals(seed, first_call + 6 * static_cast<std::uint64_t>(begin), data + begin,
                 static_cast<std::size_t>(end - begin), range);
    for (long i = begin; i < end; ++i) {
      if (std::fabs(data[i]) < range.min_normal) data[i] = round_to(dtype, data[i]);
    }
  });
}

}  // namespace

Inputs generate_inputs(const Case& c, std::uint64_t seed, DType dtype) {
  validate(c);
  Inputs in{Tensor(c.q_shape()), Tensor(c.k_shape())};
  fill(in.q, seed, 0, dtype);
  fill(in.k, seed, 6 * static_cast<std::uint64_t>(in.q.data.size()), dtype);
  return in;
}

Upstream generate_upstream(const Case& c, std::uint64_t seed, DType dtype) {
  validate(c);
  Upstream up{Tensor(c.q_shape()), Tensor(c.k_shape())};
  const std::uint64_t q_size = up.g_q.data.size(), k_size = up.g_k.data.size();
  fill(up.g_q, seed, 6 * (q_size + k_size), dtype);
  fill(up.g_k, seed, 6 * (2 * q_size + k_size), dtype);
  return up;
}

}  // namespace xposcheck
