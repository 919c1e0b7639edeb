#pragma once
// Accumulates the error statistics of one tensor. Rotated rows go through a
// branch-free row kernel (the hot path); logits and rows holding non-finite or
// out-of-range values go element by element. Both use the same formulas, so the
// worst element is the same whichever path saw it.
#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

#include "xposcheck/harness/record.hpp"
#include "xposcheck/reference/dtype.hpp"

namespace xposcheck::detail {

// 2^-floor(log2 v) for a normal positive v, from the exponent field mirrored (an
// exact power of two, so multiplying by it is exact); 2^1023 for zero and subnormals.
inline double inverse_binade(double v) {
  constexpr std::uint64_t kExponent = 0x7ff0000000000000ull, kMirror = 0x7fe0000000000000ull;
  return std::bit_cast<double>(kMirror - (std::bit_cast<std::uint64_t>(v) & kExponent));
}

// 1 / (the dtype's ulp at a non-negative finite magnitude), from the exponent bits:
// a power of two, so multiplying by it is exact. Branch-free, so loops vectorize:
// 2^-e is the exponent field mirrored, and magnitudes below the dtype's normal
// range share the subnormal spacing (the clamp).
class InverseUlp {
 public:
  explicit InverseUlp(DType t)
      : scale_(std::ldexp(1.0, traits(t).precision - 1)),
        clamp_(std::ldexp(1.0, traits(t).precision - 1 - traits(t).min_exponent)) {}
  double operator()(double magnitude) const {
    const double inverse = inverse_binade(magnitude) * scale_;
    return inverse < clamp_ ? inverse : clamp_;
  }
  // The same of sqrt(square) without the square root: for a normal binary64 s,
  // floor(log2 sqrt(s)) = floor(floor(log2 s) / 2) (sqrt is monotone and correctly
  // rounded, and powers of four have exact roots), i.e. the biased exponent
  // (E + 1023) / 2, whose dropped low bit falls below the exponent field. Zero and
  // subnormal squares give magnitudes far below every dtype's range: the clamp.
  double of_square(double square) const {
    constexpr std::uint64_t kExponent = 0x7ff0000000000000ull, kBias = 1023ull << 52;
    const auto bits = std::bit_cast<std::uint64_t>(square) & kExponent;
    const std::uint64_t root_exponent = ((bits + kBias) >> 1) & kExponent;
    const double inverse = inverse_binade(std::bit_cast<double>(root_exponent)) * scale_;
    return inverse < clamp_ ? inverse : clamp_;
  }

 private:
  double scale_, clamp_;
};

// The dtype's ulp itself, for code that divides by it.
class UlpFunction {
 public:
  explicit UlpFunction(DType t) : inverse_(t) {}
  double operator()(double magnitude) const { return 1.0 / inverse_(magnitude); }

 private:
  InverseUlp inverse_;
};

// The errors of one row (or one element), folded into the tensor's statistics.
struct RowErrors {
  std::size_t count = 0, over = 0;
  double sum = 0, sum_sq = 0, max_ulps = 0, max_ratio = 0, max_allowed = 0;
  double max_abs = 0, max_rel = 0;
};

class TensorAccumulator {
 public:
  // min_normal: the dtype's smallest normal; relative errors of smaller magnitudes are
  // not counted (the dtype holds them with fewer significant bits).
  TensorAccumulator(std::string name, long first_position, long last_position, std::size_t bins,
                    double min_normal = 0);

  // One finite, representable element; inv_ulp and inv_allowed as the row kernel uses them.
  void add(ElementRef where, double magnitude, double inv_ulp);
  // A row's aggregate at one position; `worst` locates its largest ratio, and is
  // called only when that ratio beats the tensor's worst so far.
  template <class FindWorst>
  void add_row(long position, const RowErrors& row, FindWorst&& worst) {
    if (row.count == 0) return;
    if (count_ == 0 || row.max_ratio > stats_.max_ratio) {
      stats_.max_ratio = row.max_ratio;
      stats_.worst = worst();
    }
    fold(position, row);
  }
  void add_nonfinite(const ElementRef& where) {
    if (stats_.nonfinite++ == 0) stats_.first_nonfinite = where;
  }
  double max_ratio() const { return stats_.max_ratio; }
  std::size_t nonfinite() const { return stats_.nonfinite; }
  double max_rel() const { return stats_.max_rel; }
  // The largest relative error so far in the bin of `position`.
  double bin_max_rel(long position) const { return bins_[bin_of(position)].max_rel; }
  TensorStats finish();

 private:
  struct Bin {
    double max_ulps = 0, sum_sq = 0, max_allowed = 0, max_ratio = 0, max_rel = 0;
    std::size_t count = 0;
  };
  std::size_t bin_of(long position) const {
    return static_cast<std::size_t>((position - first_) * static_cast<long>(bins_.size()) /
                                    (last_ - first_ + 1));
  }
  void fold(long position, const RowErrors& row);
  TensorStats stats_;
  long first_, last_;
  double min_normal_ = 0;
  std::vector<Bin> bins_;
  std::size_t count_ = 0;
  double sum_ = 0, sum_sq_ = 0;
};

}  // namespace xposcheck::detail
