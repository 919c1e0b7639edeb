#pragma once
// The multiprecision values a RotaryTables is combined from. Declared here without
// Boost so that only golden_exact.cpp compiles the multiprecision templates.
#include <vector>

#include "xposcheck/reference/case.hpp"
#include "xposcheck/reference/tables.hpp"

namespace xposcheck {

// One rotation (cos, sin, scale, 1/scale), each rounded to double-double.
struct SeedRotation {
  DD cos, sin, scale, inv_scale;
};

// omega_j / alpha and ln(zeta_j) / B (0 when xpos is off) of pair j.
struct SeedFrequency {
  DD omega, log_zeta;
};

// Where a table's seeds sit: position = first + h*step + m*s1 + l, with step = s1^2,
// h < coarse_count and m, l < s1.
struct SeedLayout {
  long first, s1, coarse_count;
};

// Pair j's seeds for a table laid out as `layout`: its frequency, and the rotations at
// first + h*step (the scale centred on the case's centre), at m*s1 and at l (scales
// uncentred: offsets, not positions). Each walk is computed at 128 bits by repeated
// multiplication from two direct evaluations, so each value is within count * 2^-126
// (relative; absolute for cos and sin) before its rounding to double-double. What does
// not depend on first and the centre (omega_j, ln zeta_j, the steps, the fine walks) is
// kept between calls for the same frequencies and s1, which gives the same values.
struct PairSeeds {
  SeedFrequency frequency;
  std::vector<SeedRotation> coarse, mid, unit;
};
PairSeeds pair_seeds(const Case& c, long j, const SeedLayout& layout);

}  // namespace xposcheck
