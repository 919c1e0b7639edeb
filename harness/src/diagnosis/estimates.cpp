// What the per-pair fits imply about conventions. A position shift s leaves an angle
// error s * omega_j that is constant over position; read at the lowest frequency first
// (no wrap-around), then refined frequency by frequency with the 2 pi ambiguity resolved
// by the previous estimate. A centre c' instead of c leaves a constant log-scale error
// lambda_j * (c - c') on queries and lambda_j * (c' - c) on keys.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "diagnosis/detail.hpp"

namespace xposcheck::diagnosis {
namespace {

constexpr double kTwoPi = 2.0 * std::numbers::pi;
// A fit whose error changes by less than this over the whole position range, and
// scatters less around its line, is constant: well above the output rounding of every
// dtype (bf16: ~2^-9).
constexpr double kConstantAngle = 0.05;  // radians

// The positions a tensor's fits were made over.
struct Range {
  double middle, span;
};

bool constant(const LineFit& f, const Range& r, double limit) {
  return std::fabs(f.slope) * r.span <= limit && f.residual <= limit;
}

// A constant error is best read at the middle of the positions, not extrapolated to 0.
double level(const LineFit& f, const Range& r) { return f.intercept + f.slope * r.middle; }

std::optional<double> estimate_shift(const TensorDecomposition& t, const Range& range) {
  std::optional<double> shift;
  for (auto it = t.fits.rbegin(); it != t.fits.rend(); ++it) {
    if (it->omega <= 0) continue;
    if (!constant(it->angle, range, kConstantAngle)) return std::nullopt;
    const double intercept = level(it->angle, range);
    if (!shift) {
      shift = intercept / it->omega;
      continue;
    }
    const double turns = std::round((*shift * it->omega - intercept) / kTwoPi);
    shift = (intercept + kTwoPi * turns) / it->omega;
  }
  if (!shift) return std::nullopt;
  for (const FrequencyFit& f : t.fits) {
    if (std::fabs(std::remainder(*shift * f.omega - level(f.angle, range), kTwoPi)) >
        kConstantAngle)
      return std::nullopt;
  }
  return shift;
}

// c - c' for queries (sign +1) or c' - c for keys (sign -1), by least squares over pairs.
std::optional<double> estimate_centre_offset(const TensorDecomposition& t, const Range& range,
                                             double limit) {
  double num = 0, den = 0;
  for (const FrequencyFit& f : t.fits) {
    if (!constant(f.log_scale, range, limit)) return std::nullopt;
    num += f.lambda * level(f.log_scale, range);
    den += f.lambda * f.lambda;
  }
  if (den <= 0) return std::nullopt;
  const double offset = num / den;
  for (const FrequencyFit& f : t.fits) {
    if (std::fabs(level(f.log_scale, range) - f.lambda * offset) > limit) return std::nullopt;
  }
  return offset;
}

// kappa - 1 from the log-scale slopes: lambda_j e (kappa - 1) per pair.
std::optional<double> scale_factor(const TensorDecomposition& t, double exponent) {
  double num = 0, den = 0;
  for (const FrequencyFit& f : t.fits) {
    num += exponent * f.lambda * f.log_scale.slope;
    den += f.lambda * f.lambda;
  }
  if (den <= 0) return std::nullopt;
  return 1 + num / den;
}

// The base the measured frequencies omega_j + slope_j follow: ln omega = ln(1/alpha) -
// (2j/R) ln theta', fitted over pairs whose slope is measured over a span of positions.
void estimate_frequencies(const Case& c, const TensorDecomposition& t, const Range& r, Estimates& e) {
  double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0, worst = 0;
  const double rotary = static_cast<double>(c.rotary());
  for (const FrequencyFit& f : t.fits) {
    const double omega = f.omega + f.angle.slope;
    if (f.omega <= 0 || omega <= 0 || r.span <= 0) continue;
    worst = std::max(worst, std::fabs(f.angle.slope) / f.omega);
    const double x = 2.0 * static_cast<double>(f.pair) / rotary, y = std::log(omega * c.interpolation);
    n += 1, sx += x, sy += y, sxx += x * x, sxy += x * y;
  }
  if (n < 2 || sxx * n - sx * sx <= 0) return;
  e.base = std::exp(-(n * sxy - sx * sy) / (n * sxx - sx * sx));
  e.max_frequency_error = worst;
}

// The pair whose XPOS slope lambda_j * exponent the pass-through features' log-ratio
// follows, when they all follow one (a line with a small residual).
std::optional<long> passthrough_pair(const TensorDecomposition& t, double exponent) {
  const LineFit& f = t.passthrough_log_scale;
  if (t.fits.empty() || f.slope == 0 || f.residual > 1e-2) return std::nullopt;
  long best = 0;
  for (const FrequencyFit& p : t.fits) {
    if (std::fabs(exponent * p.lambda - f.slope) < std::fabs(exponent * t.fits[best].lambda - f.slope))
      best = p.pair;
  }
  const double want = exponent * t.fits[best].lambda;
  return std::fabs(want - f.slope) <= 0.05 * std::fabs(want) ? std::optional<long>(best) : std::nullopt;
}

}  // namespace

std::optional<double> position_shift(const TensorDecomposition& t, double middle, double span) {
  return estimate_shift(t, Range{middle, span});
}

Estimates estimate_conventions(const Case& c, DType dtype,
                               const std::vector<TensorDecomposition>& parts) {
  Estimates e;
  if (parts.size() != 2) return e;
  const double n = static_cast<double>(c.seq_len), keys = static_cast<double>(c.key_rows());
  const Range q_span{static_cast<double>(c.first_query_position()) + (n - 1) / 2, n - 1};
  const Range k_span{static_cast<double>(c.first_key_position()) + (keys - 1) / 2, keys - 1};
  e.query_shift = estimate_shift(parts[0], q_span);
  e.key_shift = estimate_shift(parts[1], k_span);
  estimate_frequencies(c, parts[1], k_span, e);
  if (parts[1].first_changed >= 0 && (parts[1].first_changed != 0 || parts[1].last_changed != c.rotary() - 1)) {
    e.first_changed_feature = parts[1].first_changed;
    e.last_changed_feature = parts[1].last_changed;
  }
  if (c.xpos) {
    const double limit = std::max(1e-3, 8.0 * std::ldexp(1.0, -traits(dtype).precision));
    const double centre = static_cast<double>(c.centre());
    if (auto q = estimate_centre_offset(parts[0], q_span, limit)) e.query_centre = centre - *q;
    if (auto k = estimate_centre_offset(parts[1], k_span, limit)) e.key_centre = centre + *k;
    e.query_scale_factor = scale_factor(parts[0], 1);
    e.key_scale_factor = scale_factor(parts[1], -1);
    e.passthrough_pair = passthrough_pair(parts[0], 1);
  }
  return e;
}

}  // namespace xposcheck::diagnosis
