#include "xposcheck/harness/stream.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fmt/format.h>

#include "xposcheck/reference/golden.hpp"

namespace xposcheck {
namespace {

// Rows first..first+count-1 of every [batch, heads] slice of t.
Tensor slice_rows(const Tensor& t, long first, long count) {
  const long rows = static_cast<long>(t.shape[2]), d = static_cast<long>(t.shape[3]);
  const long leads = static_cast<long>(t.shape[0] * t.shape[1]);
  Tensor out(Shape{t.shape[0], t.shape[1], static_cast<std::size_t>(count), t.shape[3]});
  for (long l = 0; l < leads; ++l)
    std::copy_n(t.row(static_cast<std::size_t>(l * rows + first)), count * d,
                out.row(static_cast<std::size_t>(l * count)));
  return out;
}

// The inverse: part's rows written into rows first.. of every slice of whole.
void place_rows(Tensor& whole, const Tensor& part, long first) {
  const long rows = static_cast<long>(whole.shape[2]), count = static_cast<long>(part.shape[2]);
  const long d = static_cast<long>(whole.shape[3]);
  const long leads = static_cast<long>(whole.shape[0] * whole.shape[1]);
  for (long l = 0; l < leads; ++l)
    std::copy_n(part.row(static_cast<std::size_t>(l * count)), count * d,
                whole.row(static_cast<std::size_t>(l * rows + first)));
}

std::string call_label(const Case& call, long i) {
  const long first = call.first_query_position();
  const long last = first + call.seq_len - 1;
  if (i == 0) return fmt::format("prefill (positions {}..{})", first, last);
  return first == last ? fmt::format("step {} (position {})", i, first)
                       : fmt::format("step {} (positions {}..{})", i, first, last);
}

// A call's output that cannot be placed: wrong shape or dtype.
std::optional<std::string> misfit(const Case& call, DType dtype, const CandidateOutput& out) {
  const std::string want(dtype_name(dtype));
  const std::pair<const char*, std::pair<const Tensor*, Shape>> tensors[] = {
      {"q_out", {&out.q_out, call.q_shape()}}, {"k_out", {&out.k_out, call.k_shape()}}};
  for (const auto& [name, t] : tensors) {
    if (t.first->shape != t.second || t.first->size() != element_count(t.second))
      return fmt::format("{} of shape {}, expected {}", name, shape_string(t.first->shape),
                         shape_string(t.second));
  }
  if (out.q_dtype != want) return fmt::format("q_out in {}, expected {}", out.q_dtype, want);
  if (out.k_dtype != want) return fmt::format("k_out in {}, expected {}", out.k_dtype, want);
  return std::nullopt;
}

// The step holding a position of a tensor's rows: queries or keys.
long call_at_position(const Case& c, long position, bool query) {
  if (query) return c.call_of_query_row(std::clamp(position - c.first_query_position(), 0L, c.seq_len - 1));
  return c.call_of_key_row(std::clamp(position - c.first_key_position(), 0L, c.key_rows() - 1));
}

// Curves with one bin per position merged into `bins` bins over the same positions,
// by the accumulator's own mapping; every position weighs alike in the rms.
std::vector<PositionBin> merge_curve(const std::vector<PositionBin>& fine, std::size_t bins) {
  if (fine.empty() || fine.size() <= bins) return fine;
  const long first = fine.front().first, span = fine.back().last - first + 1;
  const auto n = static_cast<long>(std::min<std::size_t>(bins, static_cast<std::size_t>(span)));
  std::vector<PositionBin> out;
  std::vector<double> sum_sq;
  long current = -1;
  for (const PositionBin& b : fine) {
    const long index = (b.first - first) * n / span;
    if (index != current) {
      current = index;
      out.push_back(b);
      out.back().first = first + (index * span + n - 1) / n;
      out.back().last = first + ((index + 1) * span + n - 1) / n - 1;
      sum_sq.push_back(0);
      out.back().rms_ulps = 0;
      out.back().max_ulps = out.back().max_ratio = out.back().max_allowed_ulps = out.back().max_rel = 0;
    }
    PositionBin& m = out.back();
    m.max_ulps = std::max(m.max_ulps, b.max_ulps);
    m.max_ratio = std::max(m.max_ratio, b.max_ratio);
    m.max_allowed_ulps = std::max(m.max_allowed_ulps, b.max_allowed_ulps);
    m.max_rel = std::max(m.max_rel, b.max_rel);
    m.rms_ulps += 1;  // counts positions until the end
    sum_sq.back() += b.rms_ulps * b.rms_ulps;
  }
  for (std::size_t i = 0; i < out.size(); ++i) out[i].rms_ulps = std::sqrt(sum_sq[i] / out[i].rms_ulps);
  return out;
}

// The largest ratio of a curve's bins whose positions fall in first..last.
double curve_max(const std::vector<PositionBin>& curve, long first, long last) {
  const auto begin = std::lower_bound(curve.begin(), curve.end(), first,
                                      [](const PositionBin& b, long p) { return b.last < p; });
  double best = 0;
  for (auto it = begin; it != curve.end() && it->first <= last; ++it) best = std::max(best, it->max_ratio);
  return best;
}

}  // namespace

StreamCalls stream_calls(const Case& c, const Tensor& q_in, const Tensor& k_in) {
  StreamCalls calls;
  for (long i = 0; i < c.stream_calls(); ++i) {
    Case call = c.stream_call(i);
    calls.q_in.push_back(slice_rows(q_in, c.call_first_query_row(i), call.seq_len));
    calls.k_in.push_back(slice_rows(k_in, c.call_first_key_row(i), call.key_rows()));
    calls.cases.push_back(std::move(call));
  }
  return calls;
}

std::vector<Job> stream_jobs(const StreamCalls& calls, DType dtype) {
  std::vector<Job> jobs;
  for (std::size_t i = 0; i < calls.cases.size(); ++i)
    jobs.push_back({&calls.cases[i], dtype, &calls.q_in[i], &calls.k_in[i], i > 0});
  return jobs;
}

Attempt join_stream(const Case& c, DType dtype, const StreamCalls& calls,
                    std::span<const Attempt> attempts) {
  const std::string name(dtype_name(dtype));
  CandidateOutput joined{Tensor(c.q_shape()), Tensor(c.k_shape()), name, name};
  double seconds = 0;
  bool timed = true;
  for (std::size_t i = 0; i < calls.cases.size(); ++i) {
    const std::string label = call_label(calls.cases[i], static_cast<long>(i));
    if (i >= attempts.size()) return CandidateFailure{FailureKind::crash, label + ": no result"};
    if (const auto* failure = std::get_if<CandidateFailure>(&attempts[i])) {
      CandidateFailure f = *failure;
      f.message = label + ": " + f.message;
      return f;
    }
    const auto& out = std::get<CandidateOutput>(attempts[i]);
    if (const auto problem = misfit(calls.cases[i], dtype, out))
      return CandidateFailure{FailureKind::shape, label + " returned " + *problem};
    place_rows(joined.q_out, out.q_out, c.call_first_query_row(static_cast<long>(i)));
    place_rows(joined.k_out, out.k_out, c.call_first_key_row(static_cast<long>(i)));
    timed = timed && out.seconds;
    seconds += out.seconds.value_or(0);
  }
  if (timed) joined.seconds = seconds;
  return joined;
}

Attempt run_stream(Candidate& instance, const Case& c, DType dtype, const StreamCalls& calls) {
  // One batch: an external candidate serves every call in one process, in order.
  const std::vector<Job> jobs = stream_jobs(calls, dtype);
  const std::vector<Attempt> attempts = instance.run_batch(jobs);
  return join_stream(c, dtype, calls, attempts);
}

std::vector<long> stream_logit_rows(const Case& c, std::size_t prefill_rows) {
  std::vector<long> rows = logit_rows(c.stream->prefill, prefill_rows);
  for (long i = 1; i < c.stream_calls(); ++i) {
    const long first = c.call_first_query_row(i), last = first + c.stream->step_rows - 1;
    rows.push_back(first);
    if (last != first) rows.push_back(last);
  }
  return rows;
}

long visible_keys(const Case& c, long query_row) {
  const long i = c.call_of_query_row(query_row);
  return c.call_first_key_row(i) + c.stream_call(i).key_rows();
}

std::size_t stream_curve_bins(const Case& c) { return static_cast<std::size_t>(c.key_rows()); }

void read_steps(const Case& c, Record& record, std::size_t bins) {
  StreamVerdict v{c.stream->prefill, c.stream->step_rows, {}, {}, {}, {}};
  const auto curve = [&](std::size_t t) -> const std::vector<PositionBin>* {
    return t < record.tensors.size() && record.tensors[t].compared ? &record.tensors[t].curve : nullptr;
  };
  const long centre = c.centre();
  const long reach = record.range ? std::labs(record.range->first_position - centre) : -1;
  for (long i = 0; i < c.stream_calls(); ++i) {
    const Case call = c.stream_call(i);
    StepVerdict s;
    s.step = i;
    s.first_position = call.first_query_position();
    s.last_position = call.last_position();
    const long first_key = call.first_key_position();
    if (const auto* q = curve(0)) s.q_ratio = curve_max(*q, s.first_position, s.last_position);
    if (const auto* k = curve(1)) s.k_ratio = curve_max(*k, first_key, s.last_position);
    if (const auto* l = curve(2)) s.logits_ratio = curve_max(*l, s.first_position, s.last_position);
    s.beyond_range = reach >= 0 && std::max(std::labs(first_key - centre), std::labs(s.last_position - centre)) >= reach;
    v.steps.push_back(s);
  }
  for (std::size_t t = 0; t < std::min<std::size_t>(2, record.tensors.size()); ++t) {
    if (const auto& f = record.tensors[t].first_nonfinite)
      v.steps[static_cast<std::size_t>(call_at_position(c, f->position, t == 0))].nonfinite = true;
  }
  for (const StepVerdict& s : v.steps) {
    if (s.fails()) {
      v.first_failing_step = s.step;
      break;
    }
  }
  for (TensorStats& t : record.tensors) t.curve = merge_curve(t.curve, bins);
  if (v.first_failing_step) {
    const StepVerdict& s = v.steps[static_cast<std::size_t>(*v.first_failing_step)];
    record.message = fmt::format("stream fails from {} of {}: ", call_label(c.stream_call(s.step), s.step),
                                 c.stream_steps()) + record.message;
  }
  record.stream = std::move(v);
}

void compare_with_one_pass(const Case& c, const CandidateOutput& stream,
                           const CandidateOutput& one_pass, StreamVerdict& verdict) {
  if (stream.q_out.shape != one_pass.q_out.shape || stream.k_out.shape != one_pass.k_out.shape) return;
  double worst = 0;
  std::optional<long> first_step;
  const auto compare = [&](const Tensor& s, const Tensor& o, bool query) {
    const long rows = static_cast<long>(s.shape[2]), d = static_cast<long>(s.shape[3]);
    for (std::size_t r = 0; r < s.rows(); ++r) {
      const double *x = s.row(r), *y = o.row(r);
      double size = 0, diff = 0;
      for (long i = 0; i < d; ++i) {
        size = std::max(size, std::fabs(y[i]));
        diff = std::max(diff, x[i] == y[i] ? 0.0 : std::fabs(x[i] - y[i]));
      }
      if (diff == 0) continue;
      worst = std::max(worst, size > 0 && std::isfinite(size) ? diff / size : INFINITY);
      const long row = static_cast<long>(r) % rows;
      const long step = query ? c.call_of_query_row(row) : c.call_of_key_row(row);
      first_step = std::min(first_step.value_or(step), step);
    }
  };
  compare(stream.q_out, one_pass.q_out, true);
  compare(stream.k_out, one_pass.k_out, false);
  verdict.one_pass_difference = worst;
  verdict.one_pass_first_step = first_step;
}

}  // namespace xposcheck
