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
SeedFrequency seed_frequency(const Case& c, long j);

// For k < count, with q = start + k*step: angle q omega_j and scale zeta_j^((q - c)/B),
// where c is the case's centre when centred, else 0 (an offset, not a position).
// Computed at 128 bits by repeated multiplication from two direct evaluations; each
// value is within count * 2^-126 (relative; absolute for cos and sin) before its
// rounding to double-double.
std::vector<SeedRotation> seed_walk(const Case& c, long j, long start, long step, long count,
                                    bool centred);

}  // namespace xposcheck
