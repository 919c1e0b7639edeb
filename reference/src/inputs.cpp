#include "xposcheck/reference/inputs.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

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
// function of its index and the loop has no carried state (it vectorizes).
__attribute__((target_clones("arch=x86-64-v4", "avx2", "default"))) void draw_normals(
    std::uint64_t seed, std::uint64_t first_call, double* out, std::size_t n) {
  for (std::size_t e = 0; e < n; ++e) {
    const std::uint64_t base = seed + (first_call + 6 * e) * kGamma;
    std::uint64_t sum = 0;
    for (std::uint64_t k = 1; k <= 6; ++k) {
      const std::uint64_t bits = mix(base + k * kGamma);
      sum += (bits >> 32) + (bits & 0xFFFFFFFFULL);
    }
    out[e] = normal_from_sum(sum);
  }
}

// to[i] = round_to(dtype, from[i]) for every i (from may be to): draws in the dtype's
// normal range on the bit pattern, in a loop that vectorizes (|draw| <= 6 never
// overflows; every element is stored, since a masked store is slow on some
// processors); the rest, near zero and rare, through round_to, in a second pass only
// when there are any. One pass reads the draws and writes the target: no copy first.
__attribute__((target_clones("arch=x86-64-v4", "avx2", "default"))) void round_draws(
    const double* from, double* to, std::size_t n, DType dtype) {
  const detail::NormalRange range = detail::normal_range(dtype);
  int below = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double x = from[i];
    const bool normal = std::fabs(x) >= range.min_normal;
    to[i] = normal ? detail::round_normal_bits(x, range.dropped_bits) : x;
    below |= !normal;
  }
  if (!below) return;
  for (std::size_t i = 0; i < n; ++i) {
    if (std::fabs(to[i]) < range.min_normal) to[i] = round_to(dtype, to[i]);
  }
}

// Where the values of one dtype go.
struct Target {
  DType dtype;
  double* out;
};

// Element e of rows first..first+count-1 of every (batch, head), [bh][count][D] in each
// target's out, is element (e / (count D)) rows D + first D + e % (count D) of the
// tensor, and its draw follows 6 calls per earlier element, from `first_call` on. The
// draws are made once, in the first target's memory, and every target's values are
// rounded from them: the same values as drawing for each dtype alone.
void fill_rows(const Case& c, std::uint64_t seed, std::uint64_t first_call,
               std::span<const Target> targets, long rows, long first, long count) {
  const long per_head = count * c.head_dim, total = c.batch * c.heads * per_head;
  double* drawn = targets[0].out;
  parallel_for(total, 1 << 16, [&](long begin, long end) {
    // A piece at a time, small enough that its draws are still in the first-level
    // cache when every target copies and rounds them.
    constexpr long kPiece = 2048;
    for (long piece = begin; piece < end; piece += kPiece) {
      const long piece_end = std::min(end, piece + kPiece);
      for (long e = piece; e < piece_end;) {
        const long h = e / per_head, stop = std::min(piece_end, (h + 1) * per_head);
        const auto element = static_cast<std::uint64_t>((h * rows + first) * c.head_dim +
                                                        e % per_head);
        draw_normals(seed, first_call + 6 * element, drawn + e, static_cast<std::size_t>(stop - e));
        e = stop;
      }
      // The first target last: its memory holds the unrounded draws until then.
      const auto n = static_cast<std::size_t>(piece_end - piece);
      for (std::size_t t = targets.size(); t-- > 0;)
        round_draws(drawn + piece, targets[t].out + piece, n, targets[t].dtype);
    }
  });
}

void fill_rows(const Case& c, std::uint64_t seed, std::uint64_t first_call, DType dtype,
               long rows, long first, long count, double* out) {
  const Target target{dtype, out};
  fill_rows(c, seed, first_call, std::span<const Target>(&target, 1), rows, first, count);
}

// k's draws follow all of q's, six calls each.
std::uint64_t k_first_call(const Case& c) {
  return 6 * static_cast<std::uint64_t>(element_count(c.q_shape()));
}

}  // namespace

void generate_rows(const Case& c, std::uint64_t seed, DType dtype, bool query, long first,
                   long count, double* out) {
  validate(c);
  const long rows = query ? c.seq_len : c.key_rows();
  if (first < 0 || count < 0 || first + count > rows)
    throw std::invalid_argument("generate_rows: rows " + std::to_string(first) + "+" +
                                std::to_string(count) + " outside 0.." + std::to_string(rows));
  fill_rows(c, seed, query ? 0 : k_first_call(c), dtype, rows, first, count, out);
}

Inputs generate_inputs(const Case& c, std::uint64_t seed, DType dtype) {
  return std::move(generate_inputs(c, seed, std::span<const DType>(&dtype, 1))[0]);
}

std::vector<Inputs> generate_inputs(const Case& c, std::uint64_t seed, std::span<const DType> dtypes) {
  validate(c);
  std::vector<Inputs> in;
  std::vector<Target> q, k;
  in.reserve(dtypes.size());
  for (DType t : dtypes) {
    in.push_back({Tensor::unfilled(c.q_shape()), Tensor::unfilled(c.k_shape())});
    q.push_back({t, in.back().q.data.data()});
    k.push_back({t, in.back().k.data.data()});
  }
  if (dtypes.empty()) return in;
  fill_rows(c, seed, 0, q, c.seq_len, 0, c.seq_len);
  fill_rows(c, seed, k_first_call(c), k, c.key_rows(), 0, c.key_rows());
  return in;
}

Upstream generate_upstream(const Case& c, std::uint64_t seed, DType dtype) {
  validate(c);
  Upstream up{Tensor::unfilled(c.q_shape()), Tensor::unfilled(c.k_shape())};
  const std::uint64_t q_size = up.g_q.data.size(), k_size = up.g_k.data.size();
  // Whole tensors as rows 0.. of a case-shaped block, after the q and k draws.
  fill_rows(c, seed, 6 * (q_size + k_size), dtype, c.seq_len, 0, c.seq_len, up.g_q.data.data());
  fill_rows(c, seed, 6 * (2 * q_size + k_size), dtype, c.key_rows(), 0, c.key_rows(), up.g_k.data.data());
  return up;
}

}  // namespace xposcheck
