// The reference under a perturbed convention, evaluated in fp64 on sampled rows and
// scored like compare_outputs scores the golden one: dtype ulps at the pair magnitude
// against the record's tolerance. fp64 is ~2^29 times more precise than fp32, so the
// reference's own error never decides a verdict.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "compare_stats.hpp"
#include "diagnosis/detail.hpp"

namespace xposcheck::diagnosis {

std::vector<SampledRow> sample_rows(long leads, long rows, std::size_t max_rows,
                                    const std::vector<SampledRow>& extra) {
  std::vector<SampledRow> out;
  const long total = leads * rows;
  const long budget = static_cast<long>(std::max<std::size_t>(2, max_rows));
  if (total <= budget) {
    for (long r = 0; r < rows; ++r) {
      for (long l = 0; l < leads; ++l) out.push_back({l, r});
    }
    return out;
  }
  for (long k = 0; k < budget; ++k) out.push_back({k % leads, k * (rows - 1) / (budget - 1)});
  for (const SampledRow& s : extra) {
    if (s.lead < 0 || s.lead >= leads || s.row < 0 || s.row >= rows) continue;
    const bool seen = std::any_of(out.begin(), out.end(), [&](const SampledRow& o) {
      return o.lead == s.lead && o.row == s.row;
    });
    if (!seen) out.push_back(s);
  }
  return out;
}

std::size_t flat_row(const Evidence& ev, bool key, const SampledRow& s) {
  const std::vector<long>& held = key ? ev.k_held : ev.q_held;
  if (held.empty()) return static_cast<std::size_t>(s.lead * (key ? ev.c.key_rows() : ev.c.seq_len) + s.row);
  const std::optional<long> at = held_index(held, s.row);
  if (!at) throw std::logic_error("diagnosis: row " + std::to_string(s.row) + " of " + (key ? "k" : "q") + " is not held");
  return static_cast<std::size_t>(s.lead * static_cast<long>(held.size()) + *at);
}

double rescaled_base(const Case& c) {
  const double r = static_cast<double>(c.rotary());
  return c.base_rescale == 1.0 ? c.base : c.base * std::pow(c.base_rescale, r / (r - 2.0));
}

Convention spec_convention(const Case& c) {
  Convention conv;
  conv.layout = c.layout;
  conv.query_centre = conv.key_centre = static_cast<double>(c.centre());
  conv.interpolation = c.interpolation;
  conv.base = rescaled_base(c);
  conv.xpos = c.xpos;
  return conv;
}

std::vector<double> pair_frequencies(const Case& c, const Convention& conv) {
  if (!conv.omega.empty()) return conv.omega;
  const double r = static_cast<double>(c.rotary());
  std::vector<double> omega;
  for (long j = 0; j < c.pairs(); ++j)
    omega.push_back(std::pow(conv.base, -2.0 * static_cast<double>(j) / r) / conv.interpolation);
  return omega;
}

std::vector<double> pair_log_zeta(const Case& c) {
  const double r = static_cast<double>(c.rotary());
  std::vector<double> lambda;
  for (long j = 0; j < c.pairs(); ++j)
    lambda.push_back(std::log((2.0 * static_cast<double>(j) + 0.4 * r) / (1.4 * r)) / c.scale_base);
  return lambda;
}

namespace {

// Per-pair constants of a convention and the running score.
class Scorer {
 public:
  Scorer(const Evidence& ev, const Convention& conv)
      : ev_(ev), conv_(conv), ulp_(ev.dtype), max_finite_(traits(ev.dtype).max_finite),
        omega_(pair_frequencies(ev.c, conv)), lambda_(conv.lambda.empty() ? pair_log_zeta(ev.c) : conv.lambda) {
    if (!conv.xpos) std::fill(lambda_.begin(), lambda_.end(), 0.0);
    angle_unit_ = conv.angle_unit_ratio < 0 ? ev.tol.unit_ratio : conv.angle_unit_ratio;
    log_scale_.resize(omega_.size());
    phi_.resize(omega_.size());
    pairing_ = ev.c;
    pairing_.layout = conv.layout;
  }

  // Scores one row; returns whether any element was beyond tolerance.
  bool row(const SampledRow& s, bool key);
  HypothesisScore score;

 private:
  void element(double want, double got, double magnitude, double allowed, bool& misfit);
  bool rotated(long i) const {
    return i >= conv_.rotary_offset && i < conv_.rotary_offset + ev_.c.rotary();
  }
  // The table entry (a pair) feature e of the rotary part takes: its own pair's, or with
  // tables of the other layout, its pair in that layout.
  long entry(long pair, long e, bool other_layout) const {
    if (!other_layout) return pair;
    const long half = ev_.c.pairs();
    return pairing_.layout == Layout::half ? e / 2 : e % half;
  }
  void element_pair(long j, long a, long b, const double* x, const double* y, double power, bool& misfit);
  const Evidence& ev_;
  const Convention& conv_;
  detail::UlpFunction ulp_;
  double max_finite_;
  double angle_unit_ = 0;
  std::vector<double> omega_, lambda_, log_scale_, phi_;
  Case pairing_;
};

void Scorer::element(double want, double got, double magnitude, double allowed, bool& misfit) {
  ++score.compared;
  if (!std::isfinite(want)) {
    // A convention whose own arithmetic overflows (scaled tables in the dtype): the
    // candidate must give the same infinity, or NaN where it gives NaN.
    const bool same = std::isnan(want) ? std::isnan(got) : got == want;
    if (!same) {
      score.max_ratio = INFINITY;
      ++score.over;
      misfit = true;
    }
    return;
  }
  double ratio = std::fabs(got - want) / ulp_(magnitude) / allowed;
  if (!std::isfinite(got)) {
    // An infinity is within tolerance when the reference is beyond the dtype's largest
    // value on its side, or the allowed band around it reaches past: rounding overflows.
    const double side = got > 0 ? want : -want;
    const double headroom = (max_finite_ - side) / ulp_(magnitude) / allowed;
    ratio = std::isinf(got) && headroom <= 1.0 ? std::max(headroom, 0.0) : INFINITY;
  }
  score.max_ratio = std::max(score.max_ratio, ratio);
  if (ratio > 1.0) {
    ++score.over;
    misfit = true;
  }
}

// Pair j (features a, b) scored against this row's angles and log-scales (phi_,
// log_scale_), each feature taking its own table entry.
void Scorer::element_pair(long j, long a, long b, const double* x, const double* y, double power, bool& misfit) {
  const long offset = conv_.rotary_offset;
  const auto at = [&](long e, bool other, const std::vector<double>& table) {
    return table[static_cast<std::size_t>(entry(j, e - offset, other))];
  };
  const double phi_a = at(a, conv_.angle_tables_other_layout, phi_), phi_b = at(b, conv_.angle_tables_other_layout, phi_);
  const double ls_a = at(a, conv_.scale_tables_other_layout, log_scale_);
  const double ls_b = at(b, conv_.scale_tables_other_layout, log_scale_);
  const double sigma_a = std::exp(ls_a), sigma_b = ls_b == ls_a ? sigma_a : std::exp(ls_b);
  const double ca = std::cos(phi_a), sa = std::sin(phi_a);
  const double cb = phi_b == phi_a ? ca : std::cos(phi_b), sb = phi_b == phi_a ? sa : std::sin(phi_b);
  double ra = (x[a] * ca - x[b] * sa) * sigma_a, rb = (x[b] * cb + x[a] * sb) * sigma_b;
  // A rotation keeps the pair's magnitude; tables of the other layout do not, and their
  // errors still scale with the input's, so the pair magnitude is taken from it.
  const bool rotation = phi_a == phi_b && sigma_a == sigma_b;
  const double magnitude = rotation ? std::hypot(ra, rb) : std::hypot(x[a], x[b]) * std::max(sigma_a, sigma_b);
  if (conv_.tables_in_dtype == Convention::DtypeTables::folded) {
    ra = x[a] * round_to(ev_.dtype, ca * sigma_a) - x[b] * round_to(ev_.dtype, sa * sigma_a);
    rb = x[b] * round_to(ev_.dtype, cb * sigma_b) + x[a] * round_to(ev_.dtype, sb * sigma_b);
  } else if (conv_.tables_in_dtype == Convention::DtypeTables::separate_scale) {
    // Every table entry, product and sum rounded to the dtype, as tensors of the dtype
    // compute x * cos + rotate_half(x) * sin, then times the scale (products of two
    // 16-bit values are exact in fp64, so each rounding here is the dtype's own).
    const auto in_dtype = [&](double v) { return round_to(ev_.dtype, v); };
    ra = in_dtype(in_dtype(in_dtype(x[a] * in_dtype(ca)) - in_dtype(x[b] * in_dtype(sa))) * in_dtype(sigma_a));
    rb = in_dtype(in_dtype(in_dtype(x[b] * in_dtype(cb)) + in_dtype(x[a] * in_dtype(sb))) * in_dtype(sigma_b));
  }
  // An angle rounded in other units than the tolerance's: the same allowance at the
  // angle scaled to the tolerance's units (a power of two: exact).
  const double phi = std::max(std::fabs(phi_a), std::fabs(phi_b));
  const double allowed = ev_.tol.allowance(phi * (angle_unit_ / ev_.tol.unit_ratio), power);
  element(ra, y[a], magnitude, allowed, misfit);
  element(rb, y[b], magnitude, allowed, misfit);
}

bool Scorer::row(const SampledRow& s, bool key) {
  const Case& c = ev_.c;
  const Tensor& in = key ? ev_.k_in : ev_.q_in;
  const Tensor& out = key ? ev_.output->k_out : ev_.output->q_out;
  const std::size_t flat = flat_row(ev_, key, s);
  const double* x = in.row(flat);
  const double* y = out.row(flat);
  const RowFrame frame = conv_.row_frame
                            ? conv_.row_frame(c, key, s.row)
                            : RowFrame{static_cast<double>(key ? c.key_position(s.row) : c.query_position(s.row)), std::nullopt};
  const double shift = key ? conv_.key_shift : conv_.query_shift;
  double p = frame.position + shift;
  if (conv_.positions_in_dtype && conv_.rounded_from_first_row && !conv_.row_frame) {
    const double first = static_cast<double>(key ? c.key_position(0) : c.query_position(0)) + shift;
    p = round_to(ev_.dtype, round_to(ev_.dtype, p - first) + first);
  } else if (conv_.positions_in_dtype) {
    p = round_to(ev_.dtype, p);
  }
  double centre = frame.centre.value_or(key ? conv_.key_centre : conv_.query_centre);
  if (key && s.row < c.mem_len && conv_.memory_rotations != 1) {
    p *= conv_.memory_rotations;
    centre *= conv_.memory_rotations;
  }
  const double exponent = key ? conv_.key_exponent : conv_.query_exponent;
  const double kappa = key ? conv_.key_scale_factor : conv_.query_scale_factor;
  // The record's allowance (tolerance.hpp) at this convention's own angle and XPOS power.
  const double power = conv_.xpos ? (kappa * p - centre) / c.scale_base : 0.0;
  const double scale_allowed = ev_.tol.allowance(0.0, power);
  const long offset = conv_.rotary_offset;
  bool misfit = false;
  for (long j = 0; j < c.pairs(); ++j) {
    phi_[j] = conv_.rotation * p * omega_[j] + conv_.angle_offset;
    log_scale_[j] = exponent * lambda_[j] * (kappa * p - centre);
  }
  for (long j = 0; j < c.pairs(); ++j)
    element_pair(j, offset + pairing_.pair_a(j), offset + pairing_.pair_b(j), x, y, power, misfit);
  long passthrough = 0;
  for (long i = 0; i < c.head_dim; ++i) {
    if (rotated(i)) continue;
    // SPEC copies pass-through features exactly: the allowance is the base alone.
    double ls = 0, allowed = ev_.tol.base_ulps;
    if (conv_.passthrough_pair != -2 && !log_scale_.empty()) {
      const long j = conv_.passthrough_pair >= 0 ? conv_.passthrough_pair : passthrough % c.pairs();
      ls = log_scale_[static_cast<std::size_t>(j)];
      allowed = scale_allowed;
    }
    ++passthrough;
    const double want = x[i] * std::exp(ls);
    element(want, y[i], std::fabs(want), allowed, misfit);
  }
  return misfit;
}

}  // namespace

HypothesisScore score_convention(const Evidence& ev, const Convention& conv,
                                 std::size_t misfit_rows_limit) {
  Scorer scorer(ev, conv);
  std::size_t misfit_rows = 0;
  for (bool key : {true, false}) {
    for (const SampledRow& s : key ? ev.k_rows : ev.q_rows) {
      if (scorer.row(s, key) && ++misfit_rows >= misfit_rows_limit) return scorer.score;
    }
  }
  scorer.score.fits = scorer.score.compared > 0 && scorer.score.over == 0;
  return scorer.score;
}

}  // namespace xposcheck::diagnosis
