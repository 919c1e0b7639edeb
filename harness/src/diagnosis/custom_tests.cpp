// Hypotheses that are not a perturbed convention: a shape error read from its
// message, and history dependence read from a fresh instance of the candidate.
#include <fmt/format.h>

#include <cmath>

#include "diagnosis/hypotheses.hpp"
#include "diagnosis/stream_frames.hpp"
#include "xposcheck/harness/compare.hpp"

namespace xposcheck::diagnosis {
namespace {

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

// Elements whose bits differ (NaN equals NaN), over both tensors.
std::size_t differing_elements(const CandidateOutput& a, const CandidateOutput& b) {
  std::size_t n = 0;
  for (auto [x, y] : {std::pair{&a.q_out, &b.q_out}, std::pair{&a.k_out, &b.k_out}}) {
    if (x->shape != y->shape) return x->size() + y->size();
    for (std::size_t i = 0; i < x->size(); ++i) {
      const double u = x->data[i], v = y->data[i];
      if (u != v && !(std::isnan(u) && std::isnan(v))) ++n;
    }
  }
  return n;
}

}  // namespace

HypothesisScore test_unsliced_table(const Evidence& ev, std::string& detail) {
  HypothesisScore score;
  const ShapeIssue& s = *ev.record.shape;
  // relate_numbers / relate_shape name every size: "1024 = N, 1124 = M + N".
  const bool quotes_both = contains(s.relation, " = N") && contains(s.relation, " = M + N");
  const bool query_rows_unsliced =
      s.what == "shape" && s.tensor == "q_out" && contains(s.relation, " = M + N");
  score.fits = (s.what == "exception" && quotes_both) || query_rows_unsliced;
  score.compared = 1;
  score.over = score.fits ? 0 : 1;
  detail = s.what == "exception"
               ? fmt::format("the shape error quotes {}",
                             s.relation.empty() ? "no size of the case" : s.relation)
               : fmt::format("{} has shape {}, expected {} ({})", s.tensor, s.actual, s.expected,
                             s.relation);
  return score;
}

HypothesisScore test_memory_rows_missing(const Evidence& ev, std::string& detail) {
  HypothesisScore score;
  const ShapeIssue& s = *ev.record.shape;
  score.fits = s.what == "shape" && s.tensor == "k_out" && contains(s.relation, " = N") &&
               !contains(s.relation, " = M + N");
  score.compared = 1;
  score.over = score.fits ? 0 : 1;
  detail = fmt::format("k_out has shape {}, expected {} ({})", s.actual, s.expected, s.relation);
  return score;
}

// Two runs are compared with each other, not with a reference: no element is scored
// (compared 0), so a fresh instance that agrees is never the closest misfit.
HypothesisScore test_history(const Evidence& ev, std::string& detail) {
  HypothesisScore score;
  const Attempt fresh = ev.fresh_run();
  if (const auto* failure = std::get_if<CandidateFailure>(&fresh)) {
    // No outputs from the fresh instance: with outputs here that is history dependence;
    // without, both fail and history is not the cause.
    score.fits = ev.output != nullptr;
    detail = fmt::format("a fresh instance fails {}: {}", score.fits ? "where this one gave outputs" : "the same way",
                         failure->message);
  } else {
    const CandidateOutput& out = std::get<CandidateOutput>(fresh);
    Record fresh_record = ev.record;
    fresh_record.diagnosis.reset();
    compare_outputs(ev.c, ev.dtype, ev.golden, ev.tables, out, ev.tol, fresh_record);
    const std::size_t differ =
        ev.output ? differing_elements(*ev.output, out) : out.q_out.size() + out.k_out.size();
    score.fits = differ > 0;
    detail = fmt::format(
        "a fresh instance gives {} (max error/allowed {:.3g}) where this one, after "
        "earlier cases, gave {}; {} output elements differ",
        outcome_name(fresh_record.outcome), fresh_record.max_ratio, outcome_name(ev.record.outcome),
        differ);
  }
  score.over = score.fits ? 0 : 1;
  return score;
}

HypothesisScore test_moving_centre(const Evidence& ev, std::string& detail) {
  const std::pair<RowFrameRule, std::string> rules[] = {
      {centre_at_half_length, "floor((last position + 1) / 2), half the length so far"},
      {centre_at_half_length_up, "ceil((last position + 1) / 2), half the length so far"},
      {moving_centre(CentreRule::queries_floor), "queries-floor over the call's own rows"},
      {moving_centre(CentreRule::queries_ceil), "queries-ceil over the call's own rows"},
      {moving_centre(CentreRule::keys_floor), "keys-floor over the call's own rows"},
      {moving_centre(CentreRule::keys_ceil), "keys-ceil over the call's own rows"}};
  HypothesisScore best;
  for (const auto& [rule, name] : rules) {
    Convention conv = spec_convention(ev.c);
    conv.row_frame = rule;
    const HypothesisScore s = score_convention(ev, conv);
    if (s.fits) {
      detail = fmt::format("every sampled row fits SPEC with each call's XPOS centre at {} "
                           "(max error / allowed {:.3g})", name, s.max_ratio);
      return s;
    }
    if (best.compared == 0 || s.max_ratio < best.max_ratio) best = s;
  }
  return best;
}

}  // namespace xposcheck::diagnosis
