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

}  // namespace

Estimates estimate_conventions(const Case& c, DType dtype,
                               const std::vector<TensorDecomposition>& parts) {
  Estimates e;
  if (parts.size() != 2) return e;
  const double n = static_cast<double>(c.seq_len), m = static_cast<double>(c.mem_len);
  const Range q_span{(n - 1) / 2, n - 1}, k_span{(n - 1 - m) / 2, n + m - 1};
  e.query_shift = estimate_shift(parts[0], q_span);
  e.key_shift = estimate_shift(parts[1], k_span);
  if (c.xpos) {
    const double limit = std::max(1e-3, 8.0 * std::ldexp(1.0, -traits(dtype).precision));
    const double centre = static_cast<double>(c.centre());
    if (auto q = estimate_centre_offset(parts[0], q_span, limit)) e.query_centre = centre - *q;
    if (auto k = estimate_centre_offset(parts[1], k_span, limit)) e.key_centre = centre + *k;
  }
  return e;
}

}  // namespace xposcheck::diagnosis
