#pragma once
// The outcomes of SPEC section 3: exactly one per (candidate, case, dtype).
#include <optional>
#include <string_view>

namespace xposcheck {

enum class Outcome {
  pass,
  dim_mismatch,
  tolerance,
  nonfinite,
  out_of_range,
  crash,
  timeout,
  drift,
};

inline constexpr Outcome kAllOutcomes[] = {
    Outcome::pass,         Outcome::dim_mismatch, Outcome::tolerance, Outcome::nonfinite,
    Outcome::out_of_range, Outcome::crash,        Outcome::timeout,   Outcome::drift};

std::string_view outcome_name(Outcome o);  // "PASS", "DIM_MISMATCH", ...
std::optional<Outcome> parse_outcome(std::string_view name);

// Whether an outcome fails the CI gate: fails_gate in gate.hpp.

}  // namespace xposcheck
