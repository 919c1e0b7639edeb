#include "xposcheck/harness/tolerance.hpp"

#include <cmath>

namespace xposcheck {

// Measured justification of these numbers: docs/tolerances.md.
// The same numbers for every dtype: each term is already in units of the dtype.
ToleranceSpec default_tolerance_spec(DType) {
  ToleranceSpec spec;
  spec.rule = ToleranceRule::position_aware;
  spec.base_ulps = 8.0;
  spec.angle_factor = 4.0;
  spec.scale_factor = 4.0;
  spec.logits_factor = 2.0;
  spec.logits_bias = 1.0;
  spec.relative_k = 2.0;
  spec.relative_floor_ulps = 2.0;
  return spec;
}

Tolerance resolve_tolerance(DType t, const ToleranceOverrides& grid,
                            const ToleranceOverrides& command_line) {
  ToleranceSpec spec = default_tolerance_spec(t);
  spec.merge(grid.for_dtype(t));
  spec.merge(command_line.for_dtype(t));
  Tolerance tol;
  tol.rule = *spec.rule;
  tol.base_ulps = *spec.base_ulps;
  tol.angle_factor = *spec.angle_factor;
  tol.scale_factor = *spec.scale_factor;
  tol.logits_factor = *spec.logits_factor;
  tol.logits_bias = *spec.logits_bias;
  tol.relative_k = *spec.relative_k;
  tol.relative_floor_ulps = *spec.relative_floor_ulps;
  // An fp32 rounding (unit roundoff 2^-24) expressed in units of the dtype's
  // unit roundoff 2^-precision.
  tol.unit_ratio = std::ldexp(1.0, traits(t).precision - 24);
  return tol;
}

}  // namespace xposcheck
