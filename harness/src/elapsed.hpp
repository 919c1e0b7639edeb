#pragma once
#include <chrono>

namespace xposcheck::detail {

// Seconds of steady-clock time since t0: the unit of every timing in a record.
inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace xposcheck::detail
