#include "xposcheck/harness/compare.hpp"

#include <cmath>
#include <cstdlib>
#include <fmt/format.h>

#include "compare_stats.hpp"

namespace xposcheck {
namespace {

using detail::TensorAccumulator;
using detail::InverseUlp;
using detail::RowErrors;

// Golden values beyond the dtype's largest finite value: where the envelope ends.
struct RangeTracker {
  std::string tensor;
  std::size_t count = 0;
  long first_position = 0;
  double largest = 0;
  void add(const std::string& name, long position, long centre, double value) {
    if (count == 0 || std::labs(position - centre) < std::labs(first_position - centre)) {
      first_position = position;
      tensor = name;
    }
    largest = std::max(largest, std::fabs(value));
    ++count;
  }
};

// Allowed error of an element: position-aware, or a fixed allowance (relative rule).
struct Allowance {
  Allowance(const Tolerance& t, const RotaryTables& tables, const Case& c, double fixed)
      : tol(t), c(c), fixed(fixed) {
    // |phi(p, j)| = |p| omega_j / alpha: one product per element, not a table lookup.
    for (long j = 0; j < tables.pairs(); ++j) omega.push_back(std::fabs(tables.angle(1, j)));
  }
  const Tolerance& tol;
  const Case& c;
  double fixed = -1;           // >= 0 under the relative rule
  std::vector<double> omega;   // omega_j / alpha
  double xpos_power(long p) const {
    return c.xpos ? static_cast<double>(p - c.centre()) / c.scale_base : 0.0;
  }
  double rotated(long p, long j) const {
    if (fixed >= 0) return fixed;
    return tol.allowance(static_cast<double>(p) * omega[static_cast<std::size_t>(j)], xpos_power(p));
  }
  double passthrough() const { return fixed >= 0 ? fixed : tol.base_ulps; }
  // The largest allowance of any feature at position p (logit rows).
  double row(long p) const {
    double best = passthrough();
    for (long j = 0; j < static_cast<long>(omega.size()); ++j) best = std::max(best, rotated(p, j));
    return best;
  }
};

struct TensorView {
  const char* name;
  const Tensor& golden;
  const Tensor& got;
  bool query;
};

void compare_element(TensorAccumulator& acc, RangeTracker& range, const InverseUlp& inv_ulp,
                     double max_finite, const ElementRef& where, double magnitude, long centre,
                     const char* name) {
  if (std::fabs(where.want) > max_finite) {
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
  long a(long j) const { return half ? j : 2 * j; }
  long b(long j) const { return half ? j + pairs : 2 * j + 1; }
};

// The hot loop, one pass over a row: the error statistics, plus what decides whether
// they stand (golden values within the dtype's range, candidate values all finite;
// x - x is NaN exactly when x is not finite). Branch-free, so the reductions
// vectorize (-fopenmp-simd; -fno-trapping-math lets the selects be if-converted).
template <bool Half>
[[gnu::always_inline]] inline RowErrors row_errors(const RowShape& s, const InverseUlp& inv_ulp,
                                                   const double* g, const double* x,
                                                   bool& clean) {
  double sum = 0, sum_sq = 0, max_u = 0, max_r = 0, max_abs = 0;
  double largest = 0, probe = 0, max_rel_sq = 0;
  long over = 0;
  const long pairs = s.pairs;
  const double* inv_allowed = s.inv_allowed.data();
#pragma omp simd reduction(+ : sum, sum_sq, over, probe) \
    reduction(max : max_u, max_r, max_abs, max_rel_sq, largest)
  for (long j = 0; j < pairs; ++j) {
    const long a = Half ? j : 2 * j, b = Half ? j + pairs : 2 * j + 1;
    const double ga = g[a], gb = g[b], xa = x[a], xb = x[b];
    largest = std::max(largest, std::max(std::fabs(ga), std::fabs(gb)));
    probe += (xa - xa) + (xb - xb);
    // Golden magnitudes are far from overflow in binary64: no hypot needed, and the
    // square root is needed only for its exponent (InverseUlp::of_square) and for the
    // relative error, whose square is compared instead.
    const double square = ga * ga + gb * gb;
    const double iu = inv_ulp.of_square(square);
    const double da = std::fabs(xa - ga), db = std::fabs(xb - gb);
    const double ua = da * iu, ub = db * iu;
    const double ra = ua * inv_allowed[j], rb = ub * inv_allowed[j];
    const double d = std::max(da, db);
    sum += ua + ub;
    sum_sq += ua * ua + ub * ub;
    over += (ra > 1.0 ? 1 : 0) + (rb > 1.0 ? 1 : 0);
    max_u = std::max(max_u, std::max(ua, ub));
    max_r = std::max(max_r, std::max(ra, rb));
    max_abs = std::max(max_abs, d);
    max_rel_sq = std::max(max_rel_sq, square > 0 ? d * d / square : 0.0);
  }
  double max_rel = std::sqrt(max_rel_sq);
  for (long i = s.rotary; i < s.dim; ++i) {
    const double magnitude = std::fabs(g[i]);
    const double d = std::fabs(x[i] - g[i]);
    const double u = d * inv_ulp(magnitude), r = u * s.pass_inv_allowed;
    largest = std::max(largest, magnitude);
    probe += x[i] - x[i];
    sum += u;
    sum_sq += u * u;
    over += r > 1.0 ? 1 : 0;
    max_u = std::max(max_u, u);
    max_r = std::max(max_r, r);
    max_abs = std::max(max_abs, d);
    max_rel = std::max(max_rel, magnitude > 0 ? d / magnitude : 0.0);
  }
  clean = largest <= s.max_finite && probe == 0;
  RowErrors e;
  e.count = static_cast<std::size_t>(s.dim);
  e.over = static_cast<std::size_t>(over);
  e.sum = sum;
  e.sum_sq = sum_sq;
  e.max_ulps = max_u;
  e.max_ratio = max_r;
  e.max_allowed = s.max_allowed;
  e.max_abs = max_abs;
  e.max_rel = max_rel;
  return e;
}

// Compiled twice: AVX2 where the processor has it (twice the vector width), SSE2
// otherwise; the dynamic loader picks one.
[[gnu::target_clones("avx512f", "avx2", "default")]] RowErrors half_row_errors(
    const RowShape& s, const InverseUlp& inv_ulp, const double* g, const double* x, bool& clean) {
  return row_errors<true>(s, inv_ulp, g, x, clean);
}

[[gnu::target_clones("avx512f", "avx2", "default")]] RowErrors interleaved_row_errors(
    const RowShape& s, const InverseUlp& inv_ulp, const double* g, const double* x, bool& clean) {
  return row_errors<false>(s, inv_ulp, g, x, clean);
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

// The first element of a clean row whose ratio equals the row's maximum.
ElementRef worst_in_row(const RowShape& s, const InverseUlp& inv_ulp, const double* g,
                        const double* x, const ElementRef& row, double max_ratio) {
  ElementRef worst = row;
  for_each_element(s, g, x, row, [&](const ElementRef& at, double magnitude) {
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
  const Tolerance& t = allow.tol;
  const double p = std::fabs(static_cast<double>(position));
  const double x = std::fabs(allow.xpos_power(position));
  const long pairs = s.pairs;
  if (allow.fixed >= 0) {
    std::fill_n(allowed, pairs, allow.fixed);
    std::fill_n(inv_allowed, pairs, 1.0 / allow.fixed);
    largest = std::max(largest, allow.fixed);
  } else {
    const double base = t.base_ulps, unit = t.unit_ratio, angle = t.angle_factor;
    const double scale_term = t.scale_factor * x;
#pragma omp simd reduction(max : largest)
    for (long j = 0; j < pairs; ++j) {
      const double a = base + unit * (angle * (p * omega[j]) + scale_term);
      allowed[j] = a;
      inv_allowed[j] = 1.0 / a;
      largest = largest < a ? a : largest;
    }
  }
  s.max_allowed = largest;
}

// A row holding non-finite or out-of-range values, element by element.
void compare_row_slowly(const RowShape& s, const InverseUlp& inv_ulp, double max_finite,
                        const double* g, const double* x, const ElementRef& row, long centre,
                        const char* name, TensorAccumulator& acc, RangeTracker& range) {
  for_each_element(s, g, x, row, [&](const ElementRef& at, double magnitude) {
    compare_element(acc, range, inv_ulp, max_finite, at, magnitude, centre, name);
    return true;
  });
}

// Rows of every head interleave in the loop below, one stream per head and tensor;
// asking for the row a few positions ahead keeps them all in flight.
constexpr long kPrefetchRows = 4;
void prefetch_row(const double* row, long dim) {
  for (long i = 0; i < dim; i += 8) __builtin_prefetch(row + i);
}

TensorStats compare_rotated(const Case& c, DType dtype, const TensorView& v, const Allowance& allow,
                            RangeTracker& range, std::size_t bins) {
  const long rows = static_cast<long>(v.golden.shape[2]);
  const long first = v.query ? c.query_position(0) : c.key_position(0);
  TensorAccumulator acc(v.name, first, first + rows - 1, bins);
  const InverseUlp inv_ulp(dtype);
  const double max_finite = traits(dtype).max_finite;
  const auto pairs = static_cast<std::size_t>(c.pairs());
  RowShape shape{c.pairs(),           c.rotary(), c.head_dim, c.layout == Layout::half,
                 std::vector<double>(pairs), std::vector<double>(pairs), 0, 0, 0, max_finite};
  for (long r = 0; r < rows; ++r) {
    const long position = first + r;
    set_position(shape, allow, position);
    for (long l = 0; l < c.batch * c.heads; ++l) {
      const std::size_t row = static_cast<std::size_t>(l * rows + r);
      const double* g = v.golden.row(row);
      const double* x = v.got.row(row);
      if (r + kPrefetchRows < rows) {
        prefetch_row(g + kPrefetchRows * c.head_dim, c.head_dim);
        prefetch_row(x + kPrefetchRows * c.head_dim, c.head_dim);
      }
      const ElementRef at{l / c.heads, l % c.heads, r, 0, position, -1, 0, 0, 0, 0};
      bool clean = false;
      const RowErrors e = shape.half ? half_row_errors(shape, inv_ulp, g, x, clean)
                                     : interleaved_row_errors(shape, inv_ulp, g, x, clean);
      if (!clean) {
        compare_row_slowly(shape, inv_ulp, max_finite, g, x, at, c.centre(), v.name, acc, range);
        continue;
      }
      acc.add_row(position, e, [&] { return worst_in_row(shape, inv_ulp, g, x, at, e.max_ratio); });
    }
  }
  return acc.finish();
}

std::vector<double> row_norms(const Tensor& t) {
  std::vector<double> norms(t.rows());
  const std::size_t d = t.shape.back();
  for (std::size_t r = 0; r < norms.size(); ++r) {
    double s = 0;
    for (std::size_t i = 0; i < d; ++i) s += t.row(r)[i] * t.row(r)[i];
    norms[r] = std::sqrt(s);
  }
  return norms;
}

// Logits of the candidate's own q_out and k_out, so that another (self-consistent)
// centre convention is judged by what attention sees. The error unit is the dtype
// ulp at |q_m| |k_n|, which bounds sum_i |q_i k_i|.
TensorStats compare_logits(const Case& c, DType dtype, const Golden& golden,
                           const CandidateOutput& out, const Allowance& q_allow,
                           const Allowance& k_allow, double factor, double fixed,
                           std::size_t bins) {
  const Tensor got = logits_of(out.q_out, out.k_out, golden.logit_rows);
  const std::vector<double> qn = row_norms(golden.q_out), kn = row_norms(golden.k_out);
  const long n = c.seq_len, keys = c.key_rows();
  const auto sampled = static_cast<long>(golden.logit_rows.size());
  std::vector<double> q_row(golden.logit_rows.size()), k_row(static_cast<std::size_t>(keys));
  for (long i = 0; i < sampled; ++i) q_row[i] = q_allow.row(c.query_position(golden.logit_rows[i]));
  for (long k = 0; k < keys; ++k) k_row[k] = k_allow.row(c.key_position(k));
  TensorAccumulator acc("logits", 0, n - 1, bins);
  RangeTracker unused;
  const InverseUlp inv_ulp(dtype);
  for (long l = 0; l < c.batch * c.heads; ++l) {
    for (long i = 0; i < sampled; ++i) {
      const long m = golden.logit_rows[i];
      const double* g = golden.logits.row(static_cast<std::size_t>(l * sampled + i));
      const double* x = got.row(static_cast<std::size_t>(l * sampled + i));
      for (long k = 0; k < keys; ++k) {
        const double scale = qn[l * n + m] * kn[l * keys + k];
        ElementRef at{l / c.heads, l % c.heads, m, k, c.query_position(m), -1, x[k], g[k], 0,
                      factor * (q_row[i] + k_row[k])};
        if (fixed >= 0) at.allowed_ulps = fixed;
        compare_element(acc, unused, inv_ulp, INFINITY, at, scale, 0, "logits");
      }
    }
  }
  return acc.finish();
}

}  // namespace

namespace {

// "1124 = M + N": what a size means for this case, so a shape error explains itself.
std::string relate_size(const Case& c, long size) {
  const std::pair<long, const char*> known[] = {
      {c.seq_len, "N"},       {c.key_rows(), "M + N"}, {c.mem_len, "M"},
      {c.head_dim, "D"},      {c.rotary(), "R"},       {c.rotary() / 2, "R / 2"},
      {c.batch, "batch"},     {c.heads, "heads"}};
  for (const auto& [value, name] : known) {
    if (value == size) return fmt::format("{} = {}", size, name);
  }
  return {};
}

std::string relate_shape(const Case& c, const Shape& expected, const Shape& actual) {
  std::string out;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    if (i < expected.size() && expected[i] == actual[i]) continue;
    const std::string rel = relate_size(c, static_cast<long>(actual[i]));
    if (!rel.empty()) out += (out.empty() ? "" : ", ") + rel;
  }
  return out;
}

bool check_tensor(const Case& c, DType dtype, const char* name, const Shape& expected,
                  const Tensor& got, const std::string& got_dtype, Record& record) {
  if (got.shape != expected || got.size() != element_count(expected)) {
    record.shape = ShapeIssue{name, shape_string(expected), shape_string(got.shape), "shape",
                              relate_shape(c, expected, got.shape)};
    return false;
  }
  const auto parsed = parse_dtype(got_dtype);
  if (!parsed || *parsed != dtype) {
    record.shape = ShapeIssue{name, std::string(dtype_name(dtype)), got_dtype, "dtype", ""};
    return false;
  }
  return true;
}

std::string describe_worst(const TensorStats& t) {
  const ElementRef& w = t.worst;
  std::string where = t.name == "logits"
                          ? fmt::format("query row {} key row {}", w.row, w.feature)
                          : fmt::format("row {} feature {}", w.row, w.feature);
  return fmt::format("{}: {} of {} beyond tolerance; worst {:.4g} ulps (allowed {:.4g}) at "
                     "batch {} head {} {} (position {}{})",
                     t.name, t.over_tolerance, t.elements, w.error_ulps, w.allowed_ulps, w.batch,
                     w.head, where, w.position, w.pair >= 0 ? fmt::format(", pair {}", w.pair) : "");
}

// Outcome of finite, in-range values: NONFINITE, TOLERANCE or PASS, with a message.
Outcome value_outcome(const Record& record, std::string& message) {
  for (const TensorStats& t : record.tensors) {
    if (t.nonfinite > 0) {
      const ElementRef& f = *t.first_nonfinite;
      message = fmt::format("{}: {} non-finite values where the golden value is finite; first "
                            "at batch {} head {} row {} feature {} (position {})",
                            t.name, t.nonfinite, f.batch, f.head, f.row, f.feature, f.position);
      return Outcome::nonfinite;
    }
  }
  const TensorStats* worst = nullptr;
  for (const TensorStats& t : record.tensors) {
    if (t.over_tolerance > 0 && (!worst || t.max_ratio > worst->max_ratio)) worst = &t;
  }
  if (worst) {
    message = describe_worst(*worst);
    return Outcome::tolerance;
  }
  message = fmt::format("within tolerance; margin {:.3g}x",
                        record.max_ratio > 0 ? 1.0 / record.max_ratio : INFINITY);
  return Outcome::pass;
}

// Relates every size quoted in a shape error to the case: "1024 = N, 1124 = M + N".
// Numbers naming a dimension ("dimension 2") are indices, not sizes.
std::string relate_numbers(const Case& c, const std::string& text) {
  std::string relation;
  for (std::size_t i = 0; i < text.size();) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
    const bool is_index = i >= 10 && text.compare(i - 10, 10, "dimension ") == 0;
    const std::string rel =
        is_index ? "" : relate_size(c, std::strtol(text.substr(i, j - i).c_str(), nullptr, 10));
    if (!rel.empty() && relation.find(rel) == std::string::npos)
      relation += (relation.empty() ? "" : ", ") + rel;
    i = j;
  }
  return relation;
}

double fixed_allowance(const Tolerance& tol, const Record* yardstick, std::size_t index) {
  if (tol.rule != ToleranceRule::relative || !yardstick || index >= yardstick->tensors.size())
    return -1;
  return tol.relative_k * yardstick->tensors[index].max_ulps + tol.relative_floor_ulps;
}

}  // namespace

void compare_outputs(const Case& c, DType dtype, const Golden& golden, const RotaryTables& tables,
                     const CandidateOutput& out, const Tolerance& tol, Record& record,
                     const CompareOptions& options) {
  record.tensors.clear();
  record.shape.reset();
  record.range.reset();
  if (!check_tensor(c, dtype, "q_out", golden.q_out.shape, out.q_out, out.q_dtype, record) ||
      !check_tensor(c, dtype, "k_out", golden.k_out.shape, out.k_out, out.k_dtype, record)) {
    const ShapeIssue& s = *record.shape;
    record.outcome = Outcome::dim_mismatch;
    record.message = fmt::format("{} {}: expected {}, got {}{}", s.tensor, s.what, s.expected,
                                 s.actual, s.relation.empty() ? "" : " (" + s.relation + ")");
    return;
  }
  RangeTracker range;
  const Allowance q_allow(tol, tables, c, fixed_allowance(tol, options.yardstick, 0));
  const Allowance k_allow(tol, tables, c, fixed_allowance(tol, options.yardstick, 1));
  record.tensors.push_back(compare_rotated(c, dtype, {"q_out", golden.q_out, out.q_out, true},
                                           q_allow, range, options.curve_bins));
  record.tensors.push_back(compare_rotated(c, dtype, {"k_out", golden.k_out, out.k_out, false},
                                           k_allow, range, options.curve_bins));
  const bool clean = range.count == 0 && record.tensors[0].nonfinite == 0 &&
                     record.tensors[1].nonfinite == 0;
  if (clean && !golden.logit_rows.empty() && golden.logits.size() > 0) {
    record.tensors.push_back(compare_logits(c, dtype, golden, out, q_allow, k_allow,
                                            tol.logits_factor,
                                            fixed_allowance(tol, options.yardstick, 2),
                                            options.curve_bins));
  } else {
    TensorStats skipped;
    skipped.name = "logits";
    record.tensors.push_back(skipped);
  }
  record.max_ratio = 0;
  for (const TensorStats& t : record.tensors) record.max_ratio = std::max(record.max_ratio, t.max_ratio);

  std::string message;
  const Outcome values = value_outcome(record, message);
  if (range.count > 0) {
    record.range = RangeIssue{range.tensor, range.count, range.first_position, range.largest,
                              std::string(outcome_name(values))};
    record.outcome = Outcome::out_of_range;
    record.message = fmt::format(
        "{} golden values exceed the {} range (largest {:.4g}); envelope ends at position {} "
        "of {}; representable part: {}",
        range.count, dtype_name(dtype), range.largest, range.first_position, range.tensor,
        outcome_name(values));
    return;
  }
  record.outcome = values;
  record.message = message;
}

void record_failure(const Case& c, const CandidateFailure& failure, Record& record) {
  switch (failure.kind) {
    case FailureKind::shape: {
      record.outcome = Outcome::dim_mismatch;
      const std::string relation = relate_numbers(c, failure.message);
      record.shape = ShapeIssue{"", "", "", "exception", relation};
      record.message = "shape error raised by the candidate: " + failure.message +
                       (relation.empty() ? "" : " (" + relation + ")");
      break;
    }
    case FailureKind::timeout:
      record.outcome = Outcome::timeout;
      record.message = failure.message;
      break;
    case FailureKind::crash:
      record.outcome = Outcome::crash;
      record.message = failure.message;
      break;
  }
}

}  // namespace xposcheck
