#pragma once
// Accumulates the error statistics of one tensor, element by element.
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "xposcheck/harness/record.hpp"
#include "xposcheck/reference/dtype.hpp"

namespace xposcheck::detail {

// The dtype's ulp at a positive finite magnitude, from the exponent bits: the hot
// loop cannot afford frexp/ldexp calls.
class UlpFunction {
 public:
  explicit UlpFunction(DType t) : precision_(traits(t).precision), emin_(traits(t).min_exponent) {}
  double operator()(double magnitude) const {
    const auto bits = std::bit_cast<std::uint64_t>(magnitude);
    int e = static_cast<int>((bits >> 52) & 0x7ff) - 1023;
    if (e < emin_) e = emin_;
    return std::bit_cast<double>(static_cast<std::uint64_t>(e - precision_ + 1 + 1023) << 52);
  }

 private:
  int precision_, emin_;
};

class TensorAccumulator {
 public:
  TensorAccumulator(std::string name, long first_position, long last_position, std::size_t bins);

  // One finite, representable element.
  void add(const ElementRef& where, double magnitude_ulp) {
    const double abs_err = std::fabs(where.got - where.want);
    const double ulps = abs_err / magnitude_ulp;
    const double ratio = ulps / where.allowed_ulps;
    ++count_;
    sum_ += ulps;
    sum_sq_ += ulps * ulps;
    if (ulps > stats_.max_ulps) stats_.max_ulps = ulps;
    if (abs_err > stats_.max_abs) stats_.max_abs = abs_err;
    if (ratio > 1.0) ++stats_.over_tolerance;
    if (ratio > stats_.max_ratio || count_ == 1) {
      stats_.max_ratio = ratio;
      stats_.worst = where;
      stats_.worst.error_ulps = ulps;
    }
    Bin& bin = bins_[bin_of(where.position)];
    bin.sum_sq += ulps * ulps;
    ++bin.count;
    if (ulps > bin.max_ulps) bin.max_ulps = ulps;
    if (where.allowed_ulps > bin.max_allowed) bin.max_allowed = where.allowed_ulps;
    if (ratio > bin.max_ratio) bin.max_ratio = ratio;
  }
  void add_relative(double abs_err, double magnitude) {
    if (magnitude > 0 && abs_err / magnitude > stats_.max_rel) stats_.max_rel = abs_err / magnitude;
  }
  void add_nonfinite(const ElementRef& where) {
    if (stats_.nonfinite++ == 0) stats_.first_nonfinite = where;
  }
  TensorStats finish();

 private:
  struct Bin {
    double max_ulps = 0, sum_sq = 0, max_allowed = 0, max_ratio = 0;
    std::size_t count = 0;
  };
  std::size_t bin_of(long position) const {
    return static_cast<std::size_t>((position - first_) * static_cast<long>(bins_.size()) /
                                    (last_ - first_ + 1));
  }
  TensorStats stats_;
  long first_, last_;
  std::vector<Bin> bins_;
  std::size_t count_ = 0;
  double sum_ = 0, sum_sq_ = 0;
};

}  // namespace xposcheck::detail
