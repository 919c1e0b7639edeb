// The allowances the comparison reads per row (harness/src/compare_rows.hpp), against
// their definition taken pair by pair.
#include <catch2/catch.hpp>

#include <algorithm>

#include "compare_rows.hpp"
#include "xposcheck/harness/tolerance.hpp"

using namespace xposcheck;
using xposcheck::detail::Allowance;

namespace {

double largest_over_pairs(const Allowance& a, long p, long shift) {
  double best = a.passthrough();
  for (long j = 0; j < static_cast<long>(a.omega.size()); ++j) best = std::max(best, a.rotated(p, j, shift));
  return best;
}

}  // namespace

TEST_CASE("a row's allowance is the largest of its pairs', bit for bit") {
  Case c;
  c.head_dim = 64;
  c.seq_len = 300;
  c.mem_len = 900;
  ToleranceOverrides wide;
  wide.all.angle_factor = 3e5;  // the angle term far above the others
  wide.all.scale_factor = 7.5;
  ToleranceOverrides relative;
  relative.all.rule = ToleranceRule::relative;
  for (const bool xpos : {true, false}) {
    for (const double interpolation : {1.0, 8.0}) {
      c.xpos = xpos;
      c.interpolation = interpolation;
      const RotaryTables tables(c, c.lowest_position(), c.highest_position());
      for (const DType t : kAllDTypes) {
        for (const ToleranceOverrides& over : {ToleranceOverrides{}, wide, relative}) {
          const Tolerance tol = resolve_tolerance(t, {}, over);
          const double fixed = tol.rule == ToleranceRule::relative ? 5.0 : -1.0;
          const Allowance a(tol, tables, c, fixed);
          for (const long p : {-900L, -1L, 0L, 1L, 150L, 299L, 123457L})
            for (const long shift : {0L, 900L, -300L}) {
              INFO("xpos " << xpos << ", alpha " << interpolation << ", " << dtype_name(t) << ", p " << p
                           << ", shift " << shift);
              CHECK(a.row(p, shift) == largest_over_pairs(a, p, shift));
            }
        }
      }
    }
  }
}

TEST_CASE("range trackers joined are the tracker of all their values in order") {
  using xposcheck::detail::RangeTracker;
  const long centre = 50;
  // Positions with ties in distance from the centre, in both halves.
  const long positions[] = {90, 10, 20, 80, 30, 70, 75, 25, 40, 60, 45, 55};
  for (std::size_t split = 0; split <= std::size(positions); ++split) {
    RangeTracker all, first, second;
    for (std::size_t i = 0; i < std::size(positions); ++i) {
      const std::string name = i % 2 ? "k_out" : "q_out";
      const double value = 70000.0 + static_cast<double>(i * 37 % 11);
      all.add(name, positions[i], centre, value);
      (i < split ? first : second).add(name, positions[i], centre, value);
    }
    first.add_all(second, centre);
    INFO("split at " << split);
    CHECK(first.count == all.count);
    CHECK(first.first_position == all.first_position);
    CHECK(first.tensor == all.tensor);
    CHECK(first.largest == all.largest);
  }
}
