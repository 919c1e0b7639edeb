#pragma once
// The tolerance model (docs/tolerances.md): how many dtype ulps, at the pair
// magnitude, an element at position p and frequency j may be off.
#include "xposcheck/cases/tolerance_spec.hpp"
#include "xposcheck/reference/dtype.hpp"

namespace xposcheck {

struct Tolerance {
  ToleranceRule rule = ToleranceRule::position_aware;
  double base_ulps = 0;
  double angle_factor = 0;
  double scale_factor = 0;
  double logits_factor = 0;
  double logits_bias = 0;  // systematic relative logit error, in unit roundoffs (compare.cpp)
  double relative_k = 0;
  double relative_floor_ulps = 0;
  double unit_ratio = 0;  // 2^-24 / unit roundoff of the dtype: fp32-rounding in dtype units

  // Allowed error, in dtype ulps, of an element of a rotated pair with angle phi and
  // XPOS exponent x = (p - c) / B (0 when xpos is off). An fp32 angle is off by about
  // |phi| 2^-24; an fp32 zeta raised to x is off by about |x| 2^-24, relatively.
  double allowance(double phi, double xpos_power) const {
    return allowance_at(phi < 0 ? -phi : phi, scale_term(xpos_power));
  }

  // The same split into its terms, so that a loop over the frequencies of one position
  // computes the XPOS term once: allowance_at(|phi_j|, scale_term(x)). The one formula;
  // its evaluation order is part of the results (they are compared bit for bit).
  double scale_term(double xpos_power) const {
    return scale_factor * (xpos_power < 0 ? -xpos_power : xpos_power);
  }
  double allowance_at(double angle_magnitude, double scale_term) const {
    return base_ulps + unit_ratio * (angle_factor * angle_magnitude + scale_term);
  }
};

// The built-in defaults for a dtype.
ToleranceSpec default_tolerance_spec(DType t);

// Defaults, then the grid's overrides, then the command line's.
Tolerance resolve_tolerance(DType t, const ToleranceOverrides& grid,
                            const ToleranceOverrides& command_line);

}  // namespace xposcheck
