#include "xposcheck/harness/compare.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fmt/format.h>

#include "compare_rows.hpp"

namespace xposcheck {
namespace {

using detail::Allowance;
using detail::InverseUlp;
using detail::RangeTracker;
using detail::TensorAccumulator;
using detail::compare_element;
using detail::compare_rotated;
using detail::LogitRow;
using detail::RowErrors;
using detail::logit_row_errors;

// The first logit of a clean row whose ratio equals the row's maximum.
template <class Element>
ElementRef worst_logit(const LogitRow& row, const InverseUlp& inv_ulp, double max_ratio,
                       Element element) {
  for (long k = 0; k < row.keys; ++k) {
    const double u = std::fabs(row.got[k] - row.golden[k]) * inv_ulp(row.query_norm * row.key_norms[k]);
    if (u * (1.0 / row.allowed(k)) != max_ratio) continue;
    ElementRef at = element(k);
    at.error_ulps = u;
    return at;
  }
  return element(0);
}

// The least-squares fit candidate - golden = bias * golden over the compared logits,
// each divided by |q| |k| so that every row counts alike whatever its magnitude.
class BiasFit {
 public:
  // floor_sq: the square of the smallest normalised logit whose rounding noise is
  // counted at its own size (below it, at that size: 1/D, a random pair of vectors).
  void add(double got, double want, double magnitude, double floor_sq) {
    const double t = want / magnitude, e = (got - want) / magnitude, tt = t * t;
    et_ += e * t;
    tt_ += tt;
    noise_ += std::max(tt, floor_sq) * tt;
    eett_ += e * e * tt;
    ettt_ += e * t * tt;
    tttt_ += tt * tt;
  }
  double bias() const { return tt_ > 0 ? et_ / tt_ : 0.0; }
  // Heteroscedasticity-robust: the residuals e - bias t themselves say how noisy the
  // logits are.
  double standard_error() const {
    const double b = bias(), r2 = eett_ - 2 * b * ettt_ + b * b * tttt_;
    return tt_ > 0 ? std::sqrt(std::max(r2, 0.0)) / tt_ : 0.0;
  }
  // The same with a rounding noise of `unit` relative to each logit's size instead of
  // the residuals: what few logits cannot measure themselves.
  double model_error(double unit) const { return tt_ > 0 ? unit * std::sqrt(noise_) / tt_ : 0.0; }

 private:
  double et_ = 0, tt_ = 0, eett_ = 0, ettt_ = 0, tttt_ = 0, noise_ = 0;
};

// Rounding leaves no systematic logit error, but a correct implementation's rows and
// keys each carry a few unit roundoffs of common error (its XPOS scale or table of
// that position, rounded once): averaged over the rows and the keys compared, they
// shrink with the square root of their numbers. kBiasSigmas standard errors cover the
// noise of the fit itself, measured from its residuals and modelled as kLogitNoise unit
// roundoffs of each logit, whichever is larger. Measurements: docs/tolerances.md.
constexpr double kClusterBias = 2.0;
constexpr double kBiasSigmas = 6.0;
constexpr double kLogitNoise = 2.0;

double allowed_bias(const Case& c, DType dtype, const Tolerance& tol, const BiasFit& fit,
                    double rows, double keys) {
  const double reach = static_cast<double>(std::max(std::labs(c.lowest_position() - c.centre()),
                                                    std::labs(c.highest_position() - c.centre())));
  const double power = c.xpos ? reach / c.scale_base : 0.0;
  const double units = tol.logits_bias + kClusterBias * (1 / std::sqrt(rows) + 1 / std::sqrt(keys)) +
                       tol.unit_ratio * (tol.base_ulps + tol.scale_factor * power);
  const double u = std::ldexp(1.0, -traits(dtype).precision);
  return u * units + kBiasSigmas * std::max(fit.standard_error(), fit.model_error(kLogitNoise * u));
}

double norm_of(const double* row, std::size_t d) {
  double s = 0;
  for (std::size_t i = 0; i < d; ++i) s += row[i] * row[i];
  return std::sqrt(s);
}

// Logits of the candidate's own q_out and k_out, so that another (self-consistent)
// centre convention is judged by what attention sees. The error unit is the dtype
// ulp at |q_m| |k_n|, which bounds sum_i |q_i k_i|.
TensorStats compare_logits(const Case& c, DType dtype, const Golden& golden,
                           const CandidateOutput& out, const Allowance& q_allow,
                           const Allowance& k_allow, const Tolerance& tol, double fixed,
                           const CompareOptions& options) {
  const double factor = tol.logits_factor;
  BiasFit bias;
  double clean_rows = 0;
  long fewest_keys = c.key_rows();  // the bias allowance's key count: the row that saw fewest
  std::vector<long> keys_of_row;
  if (options.visible_keys)
    for (long m : golden.logit_rows) keys_of_row.push_back(options.visible_keys(m));
  const Tensor got = logits_of(out.q_out, out.k_out, golden.logit_rows, options.visible_keys ? &keys_of_row : nullptr);
  const long n = c.seq_len, keys = c.key_rows(), bh = c.batch * c.heads;
  const auto sampled = static_cast<long>(golden.logit_rows.size());
  const std::size_t d = golden.q_out.shape.back();
  std::vector<double> kn(static_cast<std::size_t>(bh * keys)), q_row(golden.logit_rows.size()),
      k_row(static_cast<std::size_t>(keys));
  for (std::size_t r = 0; r < kn.size(); ++r) kn[r] = norm_of(golden.k_out.row(r), d);
  for (long i = 0; i < sampled; ++i) q_row[i] = q_allow.row(c.query_position(golden.logit_rows[i]));
  for (long k = 0; k < keys; ++k) k_row[k] = k_allow.row(c.key_position(k));
  TensorAccumulator acc("logits", c.positions ? c.positions->lowest_query : c.query_position(0),
                        c.positions ? c.positions->highest_query : c.query_position(n - 1), options.curve_bins);
  RangeTracker unused;
  const InverseUlp inv_ulp(dtype);
  for (long l = 0; l < bh; ++l) {
    for (long i = 0; i < sampled; ++i) {
      const long m = golden.logit_rows[i];
      const long visible = options.visible_keys ? keys_of_row[static_cast<std::size_t>(i)] : keys;
      fewest_keys = std::min(fewest_keys, visible);
      const LogitRow row{golden.logits.row(static_cast<std::size_t>(l * sampled + i)),
                         got.row(static_cast<std::size_t>(l * sampled + i)),
                         visible,
                         norm_of(golden.q_out.row(static_cast<std::size_t>(l * n + m)), d),
                         &kn[static_cast<std::size_t>(l * keys)],
                         q_row[i],
                         k_row.data(),
                         factor,
                         fixed};
      auto element = [&](long k) {
        return ElementRef{l / c.heads, l % c.heads, m, k, c.query_position(m), -1,
                          row.got[k], row.golden[k], 0, row.allowed(k)};
      };
      bool clean = false;
      const RowErrors e = logit_row_errors(row, inv_ulp, clean);
      if (clean) {
        acc.add_row(c.query_position(m), e, [&] { return worst_logit(row, inv_ulp, e.max_ratio, element); });
        for (long k = 0; k < visible; ++k) {
          const double magnitude = row.query_norm * row.key_norms[k];
          if (magnitude > 0) bias.add(row.got[k], row.golden[k], magnitude, 1.0 / static_cast<double>(d));
        }
        clean_rows += 1;
        continue;
      }
      for (long k = 0; k < visible; ++k)
        compare_element(acc, unused, inv_ulp, INFINITY, element(k), row.query_norm * row.key_norms[k], 0, "logits");
    }
  }
  TensorStats stats = acc.finish();
  if (clean_rows > 0) {
    stats.bias = bias.bias();
    stats.bias_allowed = allowed_bias(c, dtype, tol, bias, clean_rows, static_cast<double>(bh * fewest_keys));
  }
  return stats;
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
  for (const TensorStats& t : record.tensors) {
    if (!t.bias_fails()) continue;
    message = fmt::format("{}: systematically off by {:+.3g}% (least squares over {} values), "
                          "allowed {:.3g}%",
                          t.name, 100 * *t.bias, t.elements, 100 * *t.bias_allowed);
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

bool check_output_shapes(const Case& c, DType dtype, const CandidateOutput& out, Record& record, Pass pass) {
  if (check_tensor(c, dtype, q_tensor_name(pass), c.q_shape(), out.q_out, out.q_dtype, record) &&
      check_tensor(c, dtype, k_tensor_name(pass), c.k_shape(), out.k_out, out.k_dtype, record))
    return true;
  const ShapeIssue& s = *record.shape;
  record.outcome = Outcome::dim_mismatch;
  record.message = fmt::format("{} {}: expected {}, got {}{}", s.tensor, s.what, s.expected, s.actual,
                               s.relation.empty() ? "" : " (" + s.relation + ")");
  return false;
}

void compare_outputs(const Case& c, DType dtype, const Golden& golden, const RotaryTables& tables,
                     const CandidateOutput& out, const Tolerance& tol, Record& record,
                     const CompareOptions& options) {
  record.tensors.clear();
  record.shape.reset();
  record.range.reset();
  if (!check_output_shapes(c, dtype, out, record, options.pass)) return;
  const char* q_name = q_tensor_name(options.pass);
  const char* k_name = k_tensor_name(options.pass);
  RangeTracker range;
  const Allowance q_allow(tol, tables, c, fixed_allowance(tol, options.yardstick, 0));
  const Allowance k_allow(tol, tables, c, fixed_allowance(tol, options.yardstick, 1));
  record.tensors.push_back(compare_rotated(c, dtype, {q_name, golden.q_out, out.q_out, true},
                                           q_allow, range, options.curve_bins));
  record.tensors.push_back(compare_rotated(c, dtype, {k_name, golden.k_out, out.k_out, false},
                                           k_allow, range, options.curve_bins));
  const bool clean = range.count == 0 && record.tensors[0].nonfinite == 0 &&
                     record.tensors[1].nonfinite == 0;
  if (options.pass == Pass::backward) {
    // Gradients have no logits of their own.
  } else if (clean && !golden.logit_rows.empty() && golden.logits.size() > 0) {
    record.tensors.push_back(compare_logits(c, dtype, golden, out, q_allow, k_allow, tol,
                                            fixed_allowance(tol, options.yardstick, 2), options));
  } else {
    TensorStats skipped;
    skipped.name = "logits";
    record.tensors.push_back(skipped);
  }
  record.max_ratio = 0;
  for (const TensorStats& t : record.tensors)
    record.max_ratio = std::max({record.max_ratio, t.max_ratio, t.bias_fails() ? t.bias_ratio() : 0.0});

  std::string message;
  const Outcome values = value_outcome(record, message);
  if (range.count > 0) {
    record.range = RangeIssue{range.tensor, range.count, range.first_position, range.largest,
                              std::string(outcome_name(values))};
    record.outcome = Outcome::out_of_range;
    // Overflow names the largest value; below the normal range, the scale is the reason.
    const std::string beyond = range.largest > traits(dtype).max_finite
                                   ? fmt::format("exceed the {} range (largest {:.4g})", dtype_name(dtype), range.largest)
                                   : fmt::format("leave the {} normal range (XPOS scale below 2^{})", dtype_name(dtype),
                                                 traits(dtype).min_exponent);
    record.message = fmt::format(
        "{} golden values {}; envelope ends at position {} of {}; representable part: {}{}", range.count, beyond,
        range.first_position, range.tensor, outcome_name(values),
        in_range_part_fails(record) ? " (fails the gate: " + message + ")" : "");
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
