#pragma once
// The one validator of the numeric command-line flags. CLI11's Range and
// NonNegativeNumber compare with < and >, which NaN never fails, so `--base-ulps nan`
// got through and made every comparison pass; the grid parser already refused it.
#include <limits>
#include <string>

#include <CLI/CLI.hpp>

namespace xposcheck::cli {

// A finite number in [min, max]; with open = true, min itself is refused (> min).
class FiniteRange : public CLI::Validator {
 public:
  explicit FiniteRange(double min, double max = std::numeric_limits<double>::infinity(),
                       bool open = false);
};

// A finite number > 0.
inline constexpr double kNoLimit = std::numeric_limits<double>::infinity();
inline FiniteRange FinitePositive() { return FiniteRange(0, kNoLimit, true); }

// A range as people write it: "[0, 1e+12]", ">= 0", "> 0".
std::string describe_range(double min, double max, bool open);

}  // namespace xposcheck::cli
