#include "compare_stats.hpp"

#include <algorithm>

namespace xposcheck::detail {

TensorAccumulator::TensorAccumulator(std::string name, long first_position, long last_position,
                                     std::size_t bins)
    : first_(first_position), last_(last_position) {
  stats_.name = std::move(name);
  stats_.compared = true;
  const auto span = static_cast<std::size_t>(last_position - first_position + 1);
  bins_.resize(std::max<std::size_t>(1, std::min(bins, span)));
}

TensorStats TensorAccumulator::finish() {
  stats_.elements = count_ + stats_.nonfinite;
  if (count_ > 0) {
    stats_.mean_ulps = sum_ / static_cast<double>(count_);
    stats_.rms_ulps = std::sqrt(sum_sq_ / static_cast<double>(count_));
  }
  const long n_bins = static_cast<long>(bins_.size());
  const long span = last_ - first_ + 1;
  for (long i = 0; i < n_bins; ++i) {
    const Bin& b = bins_[static_cast<std::size_t>(i)];
    if (b.count == 0) continue;
    PositionBin out;
    // Inverse of bin_of: the positions whose index maps to bin i.
    out.first = first_ + (i * span + n_bins - 1) / n_bins;
    out.last = first_ + ((i + 1) * span + n_bins - 1) / n_bins - 1;
    out.max_ulps = b.max_ulps;
    out.rms_ulps = std::sqrt(b.sum_sq / static_cast<double>(b.count));
    out.max_allowed_ulps = b.max_allowed;
    out.max_ratio = b.max_ratio;
    stats_.curve.push_back(out);
  }
  return stats_;
}

}  // namespace xposcheck::detail
