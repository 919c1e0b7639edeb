#pragma once
// Angle and XPOS scale tables: cos phi, sin phi and sigma for every (position,
// frequency) a case touches, each accurate to double-double (~2^-104 relative).
#include <cstddef>
#include <memory>
#include <vector>

#include "xposcheck/reference/case.hpp"
#include "xposcheck/reference/tensor.hpp"

namespace xposcheck {

// An unevaluated sum hi + lo with |lo| <= ulp(hi) / 2.
struct DD {
  double hi = 0.0;
  double lo = 0.0;
};

// The multiprecision seeds of the table over positions first..last of case c, from
// which any of its rows combine: a long case can then make its table rows block by
// block, each row the same value the whole table holds, without holding them all.
// Throws as RotaryTables(c, first, last).
class TableSeeds {
 public:
  TableSeeds(const Case& c, long first, long last);

  long first() const { return first_; }
  long last() const { return last_; }
  long pairs() const { return pairs_; }
  // The rows of positions from..to (inclusive, within first..last) in the table's
  // layout: 8 * pairs() doubles per position. In parallel, as RotaryTables builds.
  void combine(long from, long to, double* out) const;

 private:
  friend class RotaryTables;
  long first_, last_, pairs_, s1_ = 1, step_ = 1;
  // Seeds at first + h*step, at m*s1 and at l (position = first + h*step + m*s1 + l).
  std::vector<double> coarse_, mid_, unit_;
  std::vector<DD> omega_, log_zeta_;
  long centre_;
};

class RotaryTables {
 public:
  // Covers positions first..last (inclusive) of case c: every rotated pair j < R/2.
  // Throws InvalidParameter for an invalid case and std::invalid_argument when
  // first > last. Builds in parallel on the calling thread's ThreadBudget (threads.hpp);
  // the values do not depend on the thread count.
  RotaryTables(const Case& c, long first, long last);
  // Positions from..to only, of the table the seeds describe: row(p) is bit for bit
  // the whole table's row(p). std::invalid_argument when from..to is empty or leaves
  // the seeds' range.
  RotaryTables(const TableSeeds& seeds, long from, long to);

  long first() const { return first_; }
  long last() const { return last_; }
  long pairs() const { return pairs_; }

  DD cos(long p, long j) const { return at(p, kCos, j); }
  DD sin(long p, long j) const { return at(p, kSin, j); }
  DD scale(long p, long j) const { return at(p, kScale, j); }          // sigma; 1 when xpos off
  DD inv_scale(long p, long j) const { return at(p, kInvScale, j); }   // 1 / sigma
  double angle(long p, long j) const;      // phi(p, j) rounded to double
  double log_scale(long p, long j) const;  // ln sigma(p, j) rounded to double

  // The values of one position as separate hi and lo arrays indexed by pair j, for
  // vectorised kernels: the same numbers as cos(p, j) etc.
  struct Row {
    const double *cos_hi, *cos_lo, *sin_hi, *sin_lo;
    const double *scale_hi, *scale_lo, *inv_hi, *inv_lo;
  };
  Row row(long p) const;

 private:
  // Per position, 8 arrays of pairs_ doubles: {cos, sin, scale, inv_scale} x {hi, lo}.
  enum Quantity { kCos = 0, kSin = 1, kScale = 2, kInvScale = 3 };
  const double* slot(long p, int quantity) const {
    return data_.data() + (static_cast<std::size_t>(p - first_) * 8 + 2 * quantity) *
                              static_cast<std::size_t>(pairs_);
  }
  DD at(long p, int quantity, long j) const {
    const double* s = slot(p, quantity);
    return {s[j], s[j + pairs_]};
  }
  // Combines rows first_..last_ from the seeds, with an out-of-memory error naming
  // the tables.
  void build(const TableSeeds& seeds);

  long first_, last_, pairs_;
  Values data_;  // unfilled: the parallel build writes every element
  std::vector<DD> omega_;     // omega_j / alpha
  std::vector<DD> log_zeta_;  // ln zeta_j / B; 0 when xpos is off
  long centre_;
};

// Tables shared by every row, head, dtype and grid point with the same angle and
// scale parameters and the same positions -M..N-1 (so that no value depends on which
// cases ran before). Thread-safe; concurrent requests for the same table build it once. The cache
// keeps the few most recently used tables.
std::shared_ptr<const RotaryTables> shared_tables(const Case& c);

// Empties the cache of shared_tables (tables still in use stay alive).
void clear_shared_tables();

}  // namespace xposcheck
