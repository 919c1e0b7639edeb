#include "compare_rows.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>

namespace xposcheck::detail {

void compare_element(TensorAccumulator& acc, RangeTracker& range, const InverseUlp& inv_ulp,
                     double max_finite, const ElementRef& where, double magnitude, long centre,
                     const char* name, bool below_normal) {
  if (std::fabs(where.want) > max_finite || below_normal) {
    range.add(name, where.position, centre, where.want);
    return;
  }
  // An infinity of the golden value's sign where the allowed band around it reaches
  // past the dtype's largest value is a correct rounding that overflowed: the edge of
  // the envelope, not a wrong value (the diagnosis' envelope-edge reads it alike).
  const bool same_sign = (where.got > 0) == (where.want > 0);
  if (std::isinf(where.got) && same_sign &&
      std::fabs(where.want) + where.allowed_ulps / inv_ulp(magnitude) >= max_finite) {
    range.add(name, where.position, centre, where.want);
    return;
  }
  if (!std::isfinite(where.got)) {
    acc.add_nonfinite(where);
    return;
  }
  acc.add(where, magnitude, inv_ulp(magnitude));
}

// The features of one rotated row and the allowances at its position.
struct RowShape {
  long pairs, rotary, dim;
  bool half;                       // layout: (j, j + R/2) or (2j, 2j + 1)
  std::vector<double> allowed;     // per pair
  std::vector<double> inv_allowed;
  double pass_allowed, pass_inv_allowed, max_allowed;
  double max_finite;               // the dtype's largest finite value
  double scale_sign = 1;           // e: +1 for queries, -1 for keys
  double min_exponent = 0;         // of the dtype's smallest normal
  double min_normal_square = 0;    // the square of the dtype's smallest normal
  std::vector<unsigned char> below_normal = {};  // per pair at this position: its scale is subnormal
  long pairs_below_normal = 0;
  double max_allowed_in_range = 0;  // max_allowed over the features not below normal
  // A row whose squared relative errors stay at or below this cannot raise its
  // position bin's maximum: its exact relative errors are then not computed.
  double rel_sq_floor = 0;
  bool any_below_normal() const { return pairs_below_normal > 0; }
  long a(long j) const { return half ? j : 2 * j; }
  long b(long j) const { return half ? j + pairs : 2 * j + 1; }
};

namespace {

// The largest squared relative error d^2 / |g pair|^2 of a row's rotated pairs.
// Pairs whose golden magnitude is below the dtype's smallest normal (min_square, its
// square) are left out: the dtype holds them with fewer significant bits, so even a
// correct rounding is off by more than its precision relative to them.
// Masked: pairs whose XPOS scale is below normal (below_normal[j]) are left out too;
// the range tracker counts them.
template <bool Half, bool Masked>
[[gnu::always_inline]] inline double exact_rel_sq(long pairs, const double* g, const double* x, double min_square,
                                                  const unsigned char* below_normal) {
  double largest = 0;
#pragma omp simd reduction(max : largest)
  for (long j = 0; j < pairs; ++j) {
    const long a = Half ? j : 2 * j, b = Half ? j + pairs : 2 * j + 1;
    const double square = g[a] * g[a] + g[b] * g[b];
    const double d = std::max(std::fabs(x[a] - g[a]), std::fabs(x[b] - g[b]));
    const bool counted = square >= min_square && !(Masked && below_normal[j]);
    largest = std::max(largest, counted ? d * d / square : 0.0);
  }
  return largest;
}

// What one step of a kernel hands to the reductions: the errors in ulps and the
// error/allowed ratios of its W elements (a rotated pair, or one logit), and its share
// of the other totals.
template <int W>
struct ErrorStep {
  double u[W], r[W];
  double max_abs;
  double probe;             // x - x summed: NaN exactly when a candidate value is not finite
  double extra_a, extra_b;  // two further maxima each kernel names for itself
};

// Sums and maxima over a step's elements, in the order the results were first
// computed in (their bits are part of the results).
template <int W>
[[gnu::always_inline]] inline double total(const double (&v)[W]) {
  if constexpr (W == 1) return v[0]; else return v[0] + v[1];
}
template <int W>
[[gnu::always_inline]] inline double squares(const double (&v)[W]) {
  if constexpr (W == 1) return v[0] * v[0]; else return v[0] * v[0] + v[1] * v[1];
}
template <int W>
[[gnu::always_inline]] inline double largest(const double (&v)[W]) {
  if constexpr (W == 1) return v[0]; else return std::max(v[0], v[1]);
}
template <int W>
[[gnu::always_inline]] inline int count_over(const double (&r)[W]) {
  if constexpr (W == 1) return r[0] > 1.0 ? 1 : 0; else return (r[0] > 1.0 ? 1 : 0) + (r[1] > 1.0 ? 1 : 0);
}

struct ErrorTotals {
  double sum = 0, sum_sq = 0, max_u = 0, max_r = 0, max_abs = 0;
  long over = 0;
  double probe = 0, extra_a = 0, extra_b = 0;
};

// The reductions of both kernels over steps 0..n-1: branch-free and vectorized
// (-fopenmp-simd; -fno-trapping-math lets the selects be if-converted). Each total
// is a scalar of its own, as omp simd reductions need.
template <int W, class Step>
[[gnu::always_inline]] inline ErrorTotals reduce_errors(long n, Step&& step) {
  double sum = 0, sum_sq = 0, max_u = 0, max_r = 0, max_abs = 0, probe = 0, a = 0, b = 0;
  long over = 0;
#pragma omp simd reduction(+ : sum, sum_sq, over, probe) \
    reduction(max : max_u, max_r, max_abs, a, b)
  for (long i = 0; i < n; ++i) {
    const ErrorStep<W> e = step(i);
    a = std::max(a, e.extra_a);
    probe += e.probe;
    sum += total(e.u);
    sum_sq += squares(e.u);
    over += count_over(e.r);
    max_u = std::max(max_u, largest(e.u));
    max_r = std::max(max_r, largest(e.r));
    max_abs = std::max(max_abs, e.max_abs);
    b = std::max(b, e.extra_b);
  }
  return {sum, sum_sq, max_u, max_r, max_abs, over, probe, a, b};
}

RowErrors row_errors_of(const ErrorTotals& t, long count, double max_allowed, double max_rel) {
  RowErrors e;
  e.count = static_cast<std::size_t>(count);
  e.over = static_cast<std::size_t>(t.over);
  e.sum = t.sum;
  e.sum_sq = t.sum_sq;
  e.max_ulps = t.max_u;
  e.max_ratio = t.max_r;
  e.max_allowed = max_allowed;
  e.max_abs = t.max_abs;
  e.max_rel = max_rel;
  return e;
}

// The hot loop, one pass over a row: the error statistics, plus what decides whether
// they stand (golden values within the dtype's range, candidate values all finite;
// x - x is NaN exactly when x is not finite). Branch-free, so the reductions
// vectorize (-fopenmp-simd; -fno-trapping-math lets the selects be if-converted).
// Masked: the statistics leave out the pairs whose XPOS scale is below normal at this
// position (compare_element gives their values to the range tracker, element by element
// as they come, which is what RotatedComparer::add_rows then does).
template <bool Half, bool Masked>
[[gnu::always_inline]] inline RowErrors row_errors(const RowShape& s, const InverseUlp& inv_ulp,
                                                   const double* g, const double* x,
                                                   bool& clean) {
  const long pairs = s.pairs;
  const double* inv_allowed = s.inv_allowed.data();
  const unsigned char* below = s.below_normal.data();
  // extra_a: the largest golden magnitude; extra_b: a bound on the squared relative error.
  ErrorTotals t = reduce_errors<2>(pairs, [&](long j) {
    const long a = Half ? j : 2 * j, b = Half ? j + pairs : 2 * j + 1;
    const double ga = g[a], gb = g[b], xa = x[a], xb = x[b];
    // Golden magnitudes are far from overflow in binary64: no hypot needed, and the
    // square root is needed only for its exponent (InverseUlp::of_square) and for the
    // relative error, whose square is bounded here and computed only when it counts.
    const double square = ga * ga + gb * gb;
    const double iu = inv_ulp.of_square(square);
    const double da = std::fabs(xa - ga), db = std::fabs(xb - gb);
    const bool counted = !(Masked && below[j]);
    const double ua = counted ? da * iu : 0.0, ub = counted ? db * iu : 0.0;
    const double ra = ua * inv_allowed[j], rb = ub * inv_allowed[j];
    const double d = counted ? std::max(da, db) : 0.0;
    // d^2 times 2^-floor(log2 square) bounds d^2 / square from above, within 2x.
    return ErrorStep<2>{{ua, ub}, {ra, rb}, d, (xa - xa) + (xb - xb),
                        std::max(std::fabs(ga), std::fabs(gb)),
                        square >= s.min_normal_square ? d * d * inverse_binade(square) : 0.0};
  });
  double max_rel =
      t.extra_b > s.rel_sq_floor
          ? std::sqrt(exact_rel_sq<Half, Masked>(pairs, g, x, s.min_normal_square, below))
          : 0.0;
  for (long i = s.rotary; i < s.dim; ++i) {
    const double magnitude = std::fabs(g[i]);
    const double d = std::fabs(x[i] - g[i]);
    const double u = d * inv_ulp(magnitude), r = u * s.pass_inv_allowed;
    t.extra_a = std::max(t.extra_a, magnitude);
    t.probe += x[i] - x[i];
    t.sum += u;
    t.sum_sq += u * u;
    t.over += r > 1.0 ? 1 : 0;
    t.max_u = std::max(t.max_u, u);
    t.max_r = std::max(t.max_r, r);
    t.max_abs = std::max(t.max_abs, d);
    max_rel = std::max(max_rel, magnitude > 0 && magnitude * magnitude >= s.min_normal_square ? d / magnitude : 0.0);
  }
  clean = t.extra_a <= s.max_finite && t.probe == 0;
  if (Masked) return row_errors_of(t, s.dim - 2 * s.pairs_below_normal, s.max_allowed_in_range, max_rel);
  return row_errors_of(t, s.dim, s.max_allowed, max_rel);
}

// Compiled three times: AVX-512 or AVX2 where the processor has them (four or two
// times SSE2's vector width), SSE2 otherwise; the dynamic loader picks one.
[[gnu::target_clones("avx512f", "avx2", "default")]] RowErrors half_row_errors(
    const RowShape& s, const InverseUlp& inv_ulp, const double* g, const double* x, bool& clean) {
  return s.any_below_normal() ? row_errors<true, true>(s, inv_ulp, g, x, clean)
                            : row_errors<true, false>(s, inv_ulp, g, x, clean);
}

[[gnu::target_clones("avx512f", "avx2", "default")]] RowErrors interleaved_row_errors(
    const RowShape& s, const InverseUlp& inv_ulp, const double* g, const double* x, bool& clean) {
  return s.any_below_normal() ? row_errors<false, true>(s, inv_ulp, g, x, clean)
                            : row_errors<false, false>(s, inv_ulp, g, x, clean);
}

// Calls fn(element, pair magnitude) for every feature of a row, in order.
template <class Fn>
void for_each_element(const RowShape& s, const double* g, const double* x, ElementRef at, Fn&& fn) {
  for (long i = 0; i < s.dim; ++i) {
    const long j = i < s.rotary ? (s.half ? i % s.pairs : i / 2) : -1;
    const double magnitude =
        j >= 0 ? std::sqrt(g[s.a(j)] * g[s.a(j)] + g[s.b(j)] * g[s.b(j)]) : std::fabs(g[i]);
    at.feature = i;
    at.pair = j;
    at.got = x[i];
    at.want = g[i];
    at.allowed_ulps = j >= 0 ? s.allowed[j] : s.pass_allowed;
    if (!fn(at, magnitude)) return;
  }
}

bool below_normal_at(const RowShape& s, const ElementRef& at) {
  return at.pair >= 0 && s.below_normal[static_cast<std::size_t>(at.pair)];
}

// The first element of a clean row whose ratio equals the row's maximum, of those the
// statistics count.
ElementRef worst_in_row(const RowShape& s, const InverseUlp& inv_ulp, const double* g,
                        const double* x, const ElementRef& row, double max_ratio) {
  ElementRef worst = row;
  for_each_element(s, g, x, row, [&](const ElementRef& at, double magnitude) {
    if (below_normal_at(s, at)) return true;
    const double u = std::fabs(at.got - at.want) * inv_ulp(magnitude);
    if (u * (1.0 / at.allowed_ulps) != max_ratio) return true;
    worst = at;
    worst.error_ulps = u;
    return false;
  });
  return worst;
}

// The allowances of every feature at one position, into buffers sized once: the
// arithmetic of Allowance::rotated (|p omega_j| = |p| omega_j exactly) as one loop
// that vectorizes, since it runs once per position.
[[gnu::target_clones("avx2", "default")]] void set_position(RowShape& s, const Allowance& allow,
                                                             long position) {
  s.pass_allowed = allow.passthrough();
  s.pass_inv_allowed = 1.0 / s.pass_allowed;
  double largest = s.rotary < s.dim ? s.pass_allowed : 0.0;
  double* allowed = s.allowed.data();
  double* inv_allowed = s.inv_allowed.data();
  const double* omega = allow.omega.data();
  const Tolerance t = allow.tol;  // a local copy: no store below can alias it
  const double p = std::fabs(static_cast<double>(position));
  const double x = allow.xpos_power(position);
  const long pairs = s.pairs;
  if (allow.fixed >= 0) {
    std::fill_n(allowed, pairs, allow.fixed);
    std::fill_n(inv_allowed, pairs, 1.0 / allow.fixed);
    largest = std::max(largest, allow.fixed);
  } else {
    const double scale_term = t.scale_term(x);
#pragma omp simd reduction(max : largest)
    for (long j = 0; j < pairs; ++j) {
      const double a = t.allowance_at(p * omega[j], scale_term);
      allowed[j] = a;
      inv_allowed[j] = 1.0 / a;
      largest = largest < a ? a : largest;
    }
  }
  s.max_allowed = largest;
  // The XPOS scale sigma_j^e = 2^(e (p - c) / B log2 zeta_j), below the smallest normal?
  s.pairs_below_normal = 0;
  s.max_allowed_in_range = largest;
  if (!allow.c.xpos) return;
  double in_range = s.rotary < s.dim ? s.pass_allowed : 0.0;
  for (long j = 0; j < pairs; ++j) {
    const bool below = s.scale_sign * x * allow.log2_zeta[static_cast<std::size_t>(j)] < s.min_exponent;
    s.below_normal[static_cast<std::size_t>(j)] = below;
    s.pairs_below_normal += below ? 1 : 0;
    if (!below) in_range = std::max(in_range, allowed[j]);
  }
  s.max_allowed_in_range = in_range;
}

// A row holding non-finite or out-of-range values, element by element.
void compare_row_slowly(const RowShape& s, const InverseUlp& inv_ulp, double max_finite,
                        const double* g, const double* x, const ElementRef& row, long centre,
                        const char* name, TensorAccumulator& acc, RangeTracker& range) {
  for_each_element(s, g, x, row, [&](const ElementRef& at, double magnitude) {
    compare_element(acc, range, inv_ulp, max_finite, at, magnitude, centre, name, below_normal_at(s, at));
    return true;
  });
}

// The golden values of a clean row's pairs whose scale is below normal, to the range
// tracker (as compare_element gives them).
void track_below_normal(const RowShape& s, const double* g, long position, long centre, const char* name,
                        RangeTracker& range) {
  for (long j = 0; j < s.pairs; ++j) {
    if (!s.below_normal[static_cast<std::size_t>(j)]) continue;
    range.add(name, position, centre, g[s.a(j)]);
    range.add(name, position, centre, g[s.b(j)]);
  }
}

// Rows of every head interleave in the loop below, one stream per head and tensor;
// asking for the row a few positions ahead keeps them all in flight.
constexpr long kPrefetchRows = 4;
void prefetch_row(const double* row, long dim) {
  for (long i = 0; i < dim; i += 8) __builtin_prefetch(row + i);
}

template <bool Fixed>
[[gnu::always_inline]] inline RowErrors logit_errors(const LogitRow& row, const InverseUlp& inv_ulp,
                                                     bool& clean) {
  const double *g = row.golden, *x = row.got, *kn = row.key_norms, *ka = row.key_allowances;
  const double qn = row.query_norm, qa = row.query_allowance, factor = row.factor, fixed = row.fixed;
  // extra_a: the largest allowance; extra_b: the largest relative error.
  const ErrorTotals t = reduce_errors<1>(row.keys, [&](long k) {
    const double magnitude = qn * kn[k];
    const double d = std::fabs(x[k] - g[k]);
    const double u = d * inv_ulp(magnitude);
    const double allowed = Fixed ? fixed : factor * (qa + ka[k]);
    const double r = u * (1.0 / allowed);
    return ErrorStep<1>{{u}, {r}, d, x[k] - x[k], allowed, magnitude > 0 ? d / magnitude : 0.0};
  });
  clean = t.probe == 0;
  return row_errors_of(t, row.keys, t.extra_a, t.extra_b);
}

}  // namespace

[[gnu::target_clones("avx512f", "avx2", "default")]] RowErrors logit_row_errors(
    const LogitRow& row, const InverseUlp& inv_ulp, bool& clean) {
  return row.fixed >= 0 ? logit_errors<true>(row, inv_ulp, clean)
                        : logit_errors<false>(row, inv_ulp, clean);
}

RotatedComparer::RotatedComparer(const Case& c, DType dtype, const char* name, bool query, const Allowance& allow,
                                 RangeTracker& range, std::size_t bins)
    : c_(c),
      name_(name),
      query_(query),
      allow_(allow),
      range_(range),
      inv_ulp_(dtype),
      max_finite_(traits(dtype).max_finite),
      // Explicit positions may come in any order: the curve spans all of them.
      acc_(name, c.positions ? c.lowest_position() : (query ? c.query_position(0) : c.key_position(0)),
           c.positions ? c.highest_position()
                       : (query ? c.query_position(c.seq_len - 1) : c.key_position(c.key_rows() - 1)),
           bins, traits(dtype).min_normal) {
  const auto pairs = static_cast<std::size_t>(c.pairs());
  shape_ = std::make_unique<RowShape>(RowShape{c.pairs(), c.rotary(), c.head_dim, c.layout == Layout::half,
                                               std::vector<double>(pairs), std::vector<double>(pairs), 0, 0, 0,
                                               max_finite_});
  shape_->scale_sign = query ? 1.0 : -1.0;
  shape_->min_exponent = traits(dtype).min_exponent;
  shape_->min_normal_square = traits(dtype).min_normal * traits(dtype).min_normal;
  shape_->below_normal.assign(pairs, 0);
}

RotatedComparer::~RotatedComparer() = default;

void RotatedComparer::add_rows(const double* golden, const double* got, long first_row, long count) {
  RowShape& shape = *shape_;
  const long dim = c_.head_dim;
  for (long r = 0; r < count; ++r) {
    const long position = query_ ? c_.query_position(first_row + r) : c_.key_position(first_row + r);
    set_position(shape, allow_, position);
    for (long l = 0; l < c_.batch * c_.heads; ++l) {
      const std::size_t offset = static_cast<std::size_t>((l * count + r) * dim);
      const double* g = golden + offset;
      const double* x = got + offset;
      if (r + kPrefetchRows < count) {
        prefetch_row(g + kPrefetchRows * dim, dim);
        prefetch_row(x + kPrefetchRows * dim, dim);
      }
      const ElementRef at{l / c_.heads, l % c_.heads, first_row + r, 0, position, -1, 0, 0, 0, 0};
      // Squared, and a little lower, so that rounding never skips a row that would
      // raise its bin's maximum (and so the tensor's, which is the largest bin's).
      const double bin_rel = acc_.bin_max_rel(position);
      shape.rel_sq_floor = bin_rel * bin_rel * (1.0 - 0x1p-40);
      bool clean = false;
      const RowErrors e = shape.half ? half_row_errors(shape, inv_ulp_, g, x, clean)
                                     : interleaved_row_errors(shape, inv_ulp_, g, x, clean);
      if (!clean) {
        compare_row_slowly(shape, inv_ulp_, max_finite_, g, x, at, c_.centre(), name_, acc_, range_);
        continue;
      }
      if (shape.any_below_normal()) track_below_normal(shape, g, position, c_.centre(), name_, range_);
      acc_.add_row(position, e, [&] { return worst_in_row(shape, inv_ulp_, g, x, at, e.max_ratio); });
    }
  }
}

}  // namespace xposcheck::detail
