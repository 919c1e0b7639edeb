#pragma once
// The comparison of a rotated tensor (q_out or k_out), row by row: the tolerance
// model's allowance at each position, the vectorized row kernel, and the element by
// element path for rows holding non-finite or out-of-range values.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "compare_stats.hpp"
#include "xposcheck/harness/record.hpp"
#include "xposcheck/harness/tolerance.hpp"
#include "xposcheck/reference/case.hpp"
#include "xposcheck/reference/tables.hpp"
#include "xposcheck/reference/tensor.hpp"

namespace xposcheck::detail {

// Golden values beyond the dtype's largest finite value: where the envelope ends.
struct RangeTracker {
  std::string tensor;
  std::size_t count = 0;
  long first_position = 0;
  double largest = 0;
  void add(const std::string& name, long position, long centre, double value) {
    note_position(name, position, centre);
    largest = std::max(largest, std::fabs(value));
    ++count;
  }
  // What `later` tracked, as if its values had been added after these.
  void add_all(const RangeTracker& later, long centre) {
    if (later.count == 0) return;
    note_position(later.tensor, later.first_position, centre);
    largest = std::max(largest, later.largest);
    count += later.count;
  }
  // The envelope ends at the position nearest the centre; of equals, the first added.
  void note_position(const std::string& name, long position, long centre) {
    if (count == 0 || std::labs(position - centre) < std::labs(first_position - centre)) {
      first_position = position;
      tensor = name;
    }
  }
};

// Allowed error of an element: position-aware, or a fixed allowance (relative rule).
struct Allowance {
  Allowance(const Tolerance& t, const RotaryTables& tables, const Case& c, double fixed)
      : tol(t), c(c), fixed(fixed) {
    // |phi(p, j)| = |p| omega_j / alpha: one product per element, not a table lookup.
    for (long j = 0; j < tables.pairs(); ++j) {
      omega.push_back(std::fabs(tables.angle(1, j)));
      const double r = static_cast<double>(c.rotary());
      log2_zeta.push_back(std::log2((2.0 * static_cast<double>(j) + 0.4 * r) / (1.4 * r)));
    }
    fastest = std::max_element(omega.begin(), omega.end()) - omega.begin();
  }
  const Tolerance& tol;
  const Case& c;
  double fixed = -1;           // >= 0 under the relative rule
  std::vector<double> omega;   // omega_j / alpha
  std::vector<double> log2_zeta;  // log2 of the XPOS base zeta_j
  long fastest = 0;               // the pair of the largest omega_j
  double xpos_power(long p) const {
    return c.xpos ? static_cast<double>(p - c.centre()) / c.scale_base : 0.0;
  }
  // Pair j at position p, its angle taken at p + angle_shift (the same row counted from
  // another origin, its XPOS centre moved along).
  double rotated(long p, long j, long angle_shift = 0) const {
    if (fixed >= 0) return fixed;
    return tol.allowance(static_cast<double>(p + angle_shift) * omega[static_cast<std::size_t>(j)], xpos_power(p));
  }
  double passthrough() const { return fixed >= 0 ? fixed : tol.base_ulps; }
  // The largest allowance of any feature at position p (logit rows), angles at
  // p + angle_shift. With the tolerance's factors >= 0 (grids and the command line
  // refuse others) each rounding step of the allowance is monotone in the angle, so the
  // fastest pair's is the largest bit for bit; other factors take every pair.
  double row(long p, long angle_shift = 0) const {
    double best = passthrough();
    if (omega.empty()) return best;
    if (tol.angle_factor >= 0 && tol.unit_ratio >= 0) return std::max(best, rotated(p, fastest, angle_shift));
    for (long j = 0; j < static_cast<long>(omega.size()); ++j) best = std::max(best, rotated(p, j, angle_shift));
    return best;
  }
};

// One element: OUT_OF_RANGE bookkeeping, a non-finite count, or its error.
// below_normal: its XPOS scale lies below the dtype's smallest normal number, where
// the dtype holds the output only with fewer significant bits than its precision (SPEC
// section 2: the scale has left the dtype's normal range): beyond the envelope, like
// an overflow.
void compare_element(TensorAccumulator& acc, RangeTracker& range, const InverseUlp& inv_ulp,
                     double max_finite, const ElementRef& where, double magnitude, long centre,
                     const char* name, bool below_normal = false);

// One query row of logits against every key. The error unit of key k is the dtype
// ulp at query_norm * key_norms[k]; its allowance is `fixed` when >= 0, else
// factor * (query_allowance + key_allowances[k]).
struct LogitRow {
  const double* golden;
  const double* got;
  long keys;
  double query_norm;
  const double* key_norms;
  double query_allowance;
  const double* key_allowances;
  double factor, fixed;
  double allowed(long k) const {
    return fixed >= 0 ? fixed : factor * (query_allowance + key_allowances[k]);
  }
};

// The row's statistics by TensorAccumulator::add's formulas, vectorized; `clean` is
// false when a candidate logit is not finite (the row then goes element by element).
RowErrors logit_row_errors(const LogitRow& row, const InverseUlp& inv_ulp, bool& clean);

struct RowShape;

// The rows of one rotated tensor, a block at a time: blocks given in row order make
// the same statistics, bit for bit, as the whole tensor given at once.
class RotatedComparer {
 public:
  RotatedComparer(const Case& c, DType dtype, const char* name, bool query, const Allowance& allow,
                  RangeTracker& range, std::size_t bins);
  ~RotatedComparer();
  RotatedComparer(const RotatedComparer&) = delete;
  RotatedComparer& operator=(const RotatedComparer&) = delete;
  // Rows first_row..first_row+count-1 of every (batch, head), golden and candidate
  // values each laid out [batch * heads][count][D].
  void add_rows(const double* golden, const double* got, long first_row, long count);
  TensorStats finish() { return acc_.finish(); }
  std::size_t nonfinite() const { return acc_.nonfinite(); }

 private:
  const Case& c_;
  const char* name_;
  bool query_;
  const Allowance& allow_;
  RangeTracker& range_;
  InverseUlp inv_ulp_;
  double max_finite_;
  TensorAccumulator acc_;
  std::unique_ptr<RowShape> shape_;
};

}  // namespace xposcheck::detail
