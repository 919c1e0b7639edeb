#pragma once
// Angle and XPOS scale tables: cos phi, sin phi and sigma for every (position,
// frequency) a case touches, each accurate to double-double (~2^-104 relative).
#include <cstddef>
#include <memory>
#include <vector>

#include "xposcheck/reference/case.hpp"

namespace xposcheck {

// An unevaluated sum hi + lo with |lo| <= ulp(hi) / 2.
struct DD {
  double hi = 0.0;
  double lo = 0.0;
};

class RotaryTables {
 public:
  // Covers positions first..last (inclusive) of case c: every rotated pair j < R/2.
  RotaryTables(const Case& c, long first, long last);

  long first() const { return first_; }
  long last() const { return last_; }
  long pairs() const { return pairs_; }

  DD cos(long p, long j) const { return cos_[index(p, j)]; }
  DD sin(long p, long j) const { return sin_[index(p, j)]; }
  DD scale(long p, long j) const { return scale_[index(p, j)]; }  // sigma; 1 when xpos off
  double angle(long p, long j) const;      // phi(p, j) rounded to double
  double log_scale(long p, long j) const;  // ln sigma(p, j) rounded to double

 private:
  std::size_t index(long p, long j) const {
    return static_cast<std::size_t>(p - first_) * static_cast<std::size_t>(pairs_) +
           static_cast<std::size_t>(j);
  }
  long first_, last_, pairs_;
  std::vector<DD> cos_, sin_, scale_;
  std::vector<double> omega_;     // omega_j / alpha, rounded to double
  std::vector<double> log_zeta_;  // ln zeta_j / B, rounded to double
  long centre_;
};

// Tables shared by every row, head, dtype and grid point with the same angle and
// scale parameters; thread-safe.
std::shared_ptr<const RotaryTables> shared_tables(const Case& c);

}  // namespace xposcheck
