#include "xposcheck/harness/outcome.hpp"

#include <array>
#include <string_view>

namespace xposcheck {
namespace {
constexpr std::array<std::string_view, 8> kNames = {
    "PASS", "DIM_MISMATCH", "TOLERANCE", "NONFINITE", "OUT_OF_RANGE", "CRASH", "TIMEOUT", "DRIFT"};
}

std::string_view outcome_name(Outcome o) { return kNames[static_cast<std::size_t>(o)]; }

std::optional<Outcome> parse_outcome(std::string_view name) {
  for (std::size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == name) return static_cast<Outcome>(i);
  }
  return std::nullopt;
}

}  // namespace xposcheck
