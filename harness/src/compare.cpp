#include "xposcheck/harness/compare.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fmt/format.h>
#include <optional>

#include "compare_logits.hpp"
#include "parallel_for.hpp"

namespace xposcheck {
namespace {

using detail::Allowance;
using detail::InverseUlp;
using detail::RangeTracker;
using detail::TensorAccumulator;
using detail::LogitComparer;
using detail::RotatedComparer;


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

// values_elsewhere: the values stay in the candidate's files (CandidateOutput::rows).
bool check_tensor(const Case& c, DType dtype, const char* name, const Shape& expected,
                  const Tensor& got, const std::string& got_dtype, Record& record, bool values_elsewhere) {
  if (got.shape != expected || (!values_elsewhere && got.size() != element_count(expected))) {
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
  const bool elsewhere = out.rows != nullptr;
  if (check_tensor(c, dtype, q_tensor_name(pass), c.q_shape(), out.q_out, out.q_dtype, record, elsewhere) &&
      check_tensor(c, dtype, k_tensor_name(pass), c.k_shape(), out.k_out, out.k_dtype, record, elsewhere))
    return true;
  const ShapeIssue& s = *record.shape;
  record.outcome = Outcome::dim_mismatch;
  record.message = fmt::format("{} {}: expected {}, got {}{}", s.tensor, s.what, s.expected, s.actual,
                               s.relation.empty() ? "" : " (" + s.relation + ")");
  return false;
}

std::size_t logit_rows_for(const Case& c, std::size_t max_rows) {
  constexpr double kBudget = 16777216.0;
  const double per_row = static_cast<double>(c.batch * c.heads * c.key_rows() * c.head_dim);
  const auto affordable = static_cast<std::size_t>(std::max(8.0, kBudget / per_row));
  return max_rows == 0 ? affordable : std::min(max_rows, affordable);
}

GoldenOptions judging_golden_options(const Case& c, std::size_t max_rows) {
  GoldenOptions options;
  options.max_logit_rows = logit_rows_for(c, max_rows);
  options.double_double_logits = false;
  options.correctly_rounded = false;
  return options;
}

struct OutputComparer::State {
  State(const Case& c, DType dtype, const RotaryTables& tables, const Tolerance& tol, std::vector<long> rows,
        const CompareOptions& options)
      : c(c),
        dtype(dtype),
        tol(tol),
        options(options),
        logit_rows(std::move(rows)),
        q_allow(tol, tables, c, fixed_allowance(tol, options.yardstick, 0)),
        k_allow(tol, tables, c, fixed_allowance(tol, options.yardstick, 1)),
        q(c, dtype, q_tensor_name(options.pass), true, q_allow, q_range, options.curve_bins),
        k(c, dtype, k_tensor_name(options.pass), false, k_allow, k_range, options.curve_bins),
        query_norms(static_cast<std::size_t>(c.batch * c.heads) * logit_rows.size()) {}
  const Case& c;
  DType dtype;
  const Tolerance& tol;
  CompareOptions options;
  std::vector<long> logit_rows;
  // Each tensor's own, so that the two can be compared side by side; range() joins them.
  RangeTracker q_range, k_range;
  RangeTracker range() const {
    RangeTracker all = q_range;
    all.add_all(k_range, c.centre());
    return all;
  }
  Allowance q_allow, k_allow;
  RotatedComparer q, k;
  std::vector<double> query_norms;  // [bh][logit rows]: |golden q_out|
  std::optional<LogitComparer> logits;
};

OutputComparer::OutputComparer(const Case& c, DType dtype, const RotaryTables& tables, const Tolerance& tol,
                               std::vector<long> logit_rows, const CompareOptions& options)
    : s_(std::make_unique<State>(c, dtype, tables, tol, std::move(logit_rows), options)) {}

OutputComparer::~OutputComparer() = default;

void OutputComparer::add_query_rows(long first, long count, const double* golden, const double* got) {
  State& s = *s_;
  s.q.add_rows(golden, got, first, count);
  const long bh = s.c.batch * s.c.heads, d = s.c.head_dim, sampled = static_cast<long>(s.logit_rows.size());
  for (long i = 0; i < sampled; ++i) {
    const long m = s.logit_rows[static_cast<std::size_t>(i)];
    if (m < first || m >= first + count) continue;
    for (long l = 0; l < bh; ++l) {
      const double* row = golden + ((l * count) + (m - first)) * d;
      double sum = 0;
      for (long j = 0; j < d; ++j) sum += row[j] * row[j];
      s.query_norms[static_cast<std::size_t>(l * sampled + i)] = std::sqrt(sum);
    }
  }
}

void OutputComparer::add_key_rows(long first, long count, const double* golden, const double* got) {
  s_->k.add_rows(golden, got, first, count);
}

bool OutputComparer::clean_so_far() const {
  return s_->q_range.count == 0 && s_->k_range.count == 0 && s_->q.nonfinite() == 0 && s_->k.nonfinite() == 0;
}

void OutputComparer::add_logits(long first, long count, const double* golden_keys, const double* golden_logits,
                                const double* got_logits) {
  State& s = *s_;
  if (!s.logits)
    s.logits.emplace(s.c, s.dtype, s.logit_rows, s.query_norms, s.q_allow, s.k_allow, s.tol,
                     fixed_allowance(s.tol, s.options.yardstick, 2), s.options);
  s.logits->add_keys(first, count, golden_logits, got_logits, golden_keys);
}

void OutputComparer::finish(Record& record) {
  State& s = *s_;
  record.tensors.clear();
  record.range.reset();
  record.tensors.push_back(s.q.finish());
  record.tensors.push_back(s.k.finish());
  const bool clean = clean_so_far();
  if (s.options.pass == Pass::backward) {
    // Gradients have no logits of their own.
  } else if (clean && s.logits) {
    record.tensors.push_back(s.logits->finish());
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
  const RangeTracker range = s.range();
  if (range.count > 0) {
    record.range = RangeIssue{range.tensor, range.count, range.first_position, range.largest,
                              std::string(outcome_name(values))};
    record.outcome = Outcome::out_of_range;
    // Overflow names the largest value; below the normal range, the scale is the reason.
    const std::string beyond = range.largest > traits(s.dtype).max_finite
                                   ? fmt::format("exceed the {} range (largest {:.4g})", dtype_name(s.dtype), range.largest)
                                   : fmt::format("leave the {} normal range (XPOS scale below 2^{})",
                                                 dtype_name(s.dtype), traits(s.dtype).min_exponent);
    record.message = fmt::format(
        "{} golden values {}; envelope ends at position {} of {}; representable part: {}{}", range.count, beyond,
        range.first_position, range.tensor, outcome_name(values),
        in_range_part_fails(record) ? " (fails the gate: " + message + ")" : "");
    return;
  }
  record.outcome = values;
  record.message = message;
}

void compare_outputs(const Case& c, DType dtype, const Golden& golden, const RotaryTables& tables,
                     const CandidateOutput& out, const Tolerance& tol, Record& record,
                     const CompareOptions& options) {
  record.tensors.clear();
  record.shape.reset();
  record.range.reset();
  if (!check_output_shapes(c, dtype, out, record, options.pass)) return;
  if (out.rows) throw std::logic_error("outputs left in files are compared in blocks (judge_output_in_blocks)");
  OutputComparer comparer(c, dtype, tables, tol, golden.logit_rows, options);
  // The two tensors share nothing until finish: side by side for a large case, unless
  // the cores are taken already (other cases judged alongside).
  const bool side_by_side = !serial_here() && golden.k_out.size() >= (std::size_t(1) << 16);
  parallel_for(2, [&](std::size_t tensor) {
    if (tensor == 0) comparer.add_query_rows(0, c.seq_len, golden.q_out.data.data(), out.q_out.data.data());
    else comparer.add_key_rows(0, c.key_rows(), golden.k_out.data.data(), out.k_out.data.data());
  }, side_by_side ? 2 : 1);
  if (options.pass == Pass::forward && comparer.clean_so_far() && !golden.logit_rows.empty() &&
      golden.logits.size() > 0) {
    std::vector<long> visible;
    if (options.visible_keys)
      for (long m : golden.logit_rows) visible.push_back(options.visible_keys(m));
    const Tensor got = logits_of(out.q_out, out.k_out, golden.logit_rows, options.visible_keys ? &visible : nullptr);
    comparer.add_logits(0, c.key_rows(), golden.k_out.data.data(), golden.logits.data.data(), got.data.data());
  }
  comparer.finish(record);
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
