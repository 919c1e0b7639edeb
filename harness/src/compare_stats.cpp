#include "compare_stats.hpp"

#include <algorithm>

namespace xposcheck::detail {

TensorAccumulator::TensorAccumulator(std::string name, long first_position, long last_position,
                                     std::size_t bins, double min_normal)
    : first_(first_position), last_(last_position), min_normal_(min_normal) {
  stats_.name = std::move(name);
  stats_.compared = true;
  const auto span = static_cast<std::size_t>(last_position - first_position + 1);
  bins_.resize(std::max<std::size_t>(1, std::min(bins, span)));
}

void TensorAccumulator::add(ElementRef where, double magnitude, double inv_ulp) {
  const double abs_err = std::fabs(where.got - where.want);
  const double ulps = abs_err * inv_ulp;
  const double ratio = ulps * (1.0 / where.allowed_ulps);
  where.error_ulps = ulps;
  RowErrors e;
  e.count = 1;
  e.over = ratio > 1.0 ? 1 : 0;
  e.sum = ulps;
  e.sum_sq = ulps * ulps;
  e.max_ulps = ulps;
  e.max_ratio = ratio;
  e.max_allowed = where.allowed_ulps;
  e.max_abs = abs_err;
  e.max_rel = magnitude > 0 && magnitude >= min_normal_ ? abs_err / magnitude : 0;
  add_row(where.position, e, [&] { return where; });
}

void TensorAccumulator::fold(long position, const RowErrors& row) {
  count_ += row.count;
  sum_ += row.sum;
  sum_sq_ += row.sum_sq;
  stats_.over_tolerance += row.over;
  stats_.max_ulps = std::max(stats_.max_ulps, row.max_ulps);
  stats_.max_abs = std::max(stats_.max_abs, row.max_abs);
  stats_.max_rel = std::max(stats_.max_rel, row.max_rel);
  Bin& bin = bins_[bin_of(position)];
  bin.count += row.count;
  bin.sum_sq += row.sum_sq;
  bin.max_ulps = std::max(bin.max_ulps, row.max_ulps);
  bin.max_allowed = std::max(bin.max_allowed, row.max_allowed);
  bin.max_ratio = std::max(bin.max_ratio, row.max_ratio);
  bin.max_rel = std::max(bin.max_rel, row.max_rel);
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
    out.max_rel = b.max_rel;
    stats_.curve.push_back(out);
  }
  return stats_;
}

}  // namespace xposcheck::detail
