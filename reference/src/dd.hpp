#pragma once
// Double-double arithmetic (Dekker 1971; Knuth TAOCP 4.2.2; Shewchuk 1997) on the DD
// of tables.hpp. Every product goes through fma, so the error-free transformations stay
// exact whether or not the compiler contracts other expressions into fma; on a CPU
// without FMA, glibc's fma is a correct (slower) software fallback.
#include <cmath>

#include "xposcheck/reference/tables.hpp"

namespace xposcheck::dd {

// s + e == a + b exactly (Knuth's TwoSum: no precondition on magnitudes).
inline DD two_sum(double a, double b) {
  const double s = a + b;
  const double bb = s - a;
  const double e = (a - (s - bb)) + (b - bb);
  return {s, e};
}

// s + e == a + b exactly when |a| >= |b| or a == 0 (Dekker's FastTwoSum).
inline DD fast_two_sum(double a, double b) {
  const double s = a + b;
  return {s, b - (s - a)};
}

// p + e == a * b exactly (barring underflow).
inline DD two_prod(double a, double b) {
  const double p = a * b;
  return {p, std::fma(a, b, -p)};
}

// x * d for a double d; relative error about 2^-104.
inline DD mul(DD x, double d) {
  const DD p = two_prod(x.hi, d);
  return fast_two_sum(p.hi, std::fma(x.lo, d, p.lo));
}

// x * y; relative error about 2^-103 (the lo * lo term is below it and dropped).
inline DD mul(DD x, DD y) {
  const DD p = two_prod(x.hi, y.hi);
  const double lo = std::fma(x.hi, y.lo, std::fma(x.lo, y.hi, p.lo));
  return fast_two_sum(p.hi, lo);
}

// x + y with the accurate (IEEE-style) addition: error about 2^-104 |x + y| even when
// x and y nearly cancel.
inline DD add(DD x, DD y) {
  const DD s = two_sum(x.hi, y.hi);
  const DD t = two_sum(x.lo, y.lo);
  DD r = fast_two_sum(s.hi, s.lo + t.hi);
  return fast_two_sum(r.hi, r.lo + t.lo);
}

inline DD neg(DD x) { return {-x.hi, -x.lo}; }
inline DD sub(DD x, DD y) { return add(x, neg(y)); }

// The double nearest to hi + lo (one IEEE addition rounds the exact sum).
inline double round(DD x) { return x.hi + x.lo; }

}  // namespace xposcheck::dd
