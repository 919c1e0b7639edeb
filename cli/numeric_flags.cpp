#include "numeric_flags.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

namespace xposcheck::cli {

std::string describe_range(double min, double max, bool open) {
  const char* low = open ? ">" : ">=";
  if (std::isinf(max)) return fmt::format("{} {:g}", low, min);
  return fmt::format("{}{:g}, {:g}]", open ? "(" : "[", min, max);
}

FiniteRange::FiniteRange(double min, double max, bool open)
    : CLI::Validator("FLOAT " + describe_range(min, max, open)) {
  func_ = [min, max, open](std::string& text) -> std::string {
    const std::string wanted = "a finite number " + describe_range(min, max, open);
    errno = 0;
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE)
      return fmt::format("'{}' is not {}", text, wanted);
    if (!std::isfinite(v)) return fmt::format("'{}' is not finite: want {}", text, wanted);
    if (v < min || v > max || (open && v == min))
      return fmt::format("{} is out of range: want {}", text, wanted);
    return {};
  };
}

}  // namespace xposcheck::cli
