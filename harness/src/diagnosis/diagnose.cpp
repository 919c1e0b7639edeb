// Orchestrates a diagnosis: decomposition, then the hypotheses of the table in priority
// order until one explains the outputs; attaches the verdict to the record.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "diagnosis/convention_frame.hpp"
#include "diagnosis/hypotheses.hpp"
#include "elapsed.hpp"
#include "xposcheck/harness/compare.hpp"
#include "xposcheck/harness/gate.hpp"
#include "xposcheck/reference/golden.hpp"
#include "xposcheck/reference/tables.hpp"

namespace xposcheck {

using namespace diagnosis;

const std::vector<std::string>& known_conventions() {
  static const std::vector<std::string> names = {"origin", "centre"};
  return names;
}

std::string_view diagnosis_kind_name(DiagnosisKind k) {
  switch (k) {
    case DiagnosisKind::bug: return "bug";
    case DiagnosisKind::convention: return "convention";
    case DiagnosisKind::precision: return "precision";
    case DiagnosisKind::unexplained: return "unexplained";
  }
  return "unexplained";
}

std::optional<DiagnosisKind> parse_diagnosis_kind(std::string_view name) {
  for (DiagnosisKind k : {DiagnosisKind::bug, DiagnosisKind::convention, DiagnosisKind::precision,
                          DiagnosisKind::unexplained}) {
    if (diagnosis_kind_name(k) == name) return k;
  }
  return std::nullopt;
}

bool wants_diagnosis(const Record& record) {
  switch (record.outcome) {
    case Outcome::tolerance:
    case Outcome::dim_mismatch:
    case Outcome::nonfinite:
    case Outcome::crash: return true;
    case Outcome::out_of_range: return record.range && record.range->in_range_outcome != "PASS";
    default: return false;
  }
}

namespace {

bool shapes_match(const DiagnosisInput& in) {
  return in.output && in.output->q_out.shape == in.golden->q_out.shape &&
         in.output->k_out.shape == in.golden->k_out.shape &&
         in.output->q_out.size() == in.golden->q_out.size() &&
         in.output->k_out.size() == in.golden->k_out.size();
}

// The worst element of a tensor, so that the sample always holds the row that failed.
// The rows of a tensor's worst element and first non-finite one, so that the sample
// always holds the rows that failed.
std::vector<SampledRow> failing_rows(const Record& record, const char* tensor, long heads) {
  std::vector<SampledRow> rows;
  for (const TensorStats& t : record.tensors) {
    if (t.name != tensor || !t.compared) continue;
    if (t.max_ratio > 1) rows.push_back({t.worst.batch * heads + t.worst.head, t.worst.row});
    if (const auto& f = t.first_nonfinite) rows.push_back({f->batch * heads + f->head, f->row});
  }
  return rows;
}

const TensorStats* logits_of(const Record& record) {
  for (const TensorStats& t : record.tensors) {
    if (t.name == "logits" && t.compared) return &t;
  }
  return nullptr;
}

std::string convention_evidence(const Diagnosis& d, const HypothesisScore& s) {
  return fmt::format(
      "under SPEC {} of {} sampled elements are beyond tolerance (max error/allowed "
      ">= {:.4g}); under this hypothesis all {} are within it (max {:.3g})",
      d.spec.over, d.spec.compared, d.spec.max_ratio, s.compared, s.max_ratio);
}

std::string decomposition_evidence(const Diagnosis& d) {
  std::string out;
  for (const TensorDecomposition& t : d.decomposition) {
    out += fmt::format(
        "{}{}: max angle error {:.3g} rad (position {}, pair {}), max log-scale error "
        "{:.3g}, angle error {:.2g} |phi| eps",
        out.empty() ? "" : "; ", t.tensor, t.max_angle_error, t.worst_angle_position,
        t.worst_angle_pair, t.max_log_scale_error, t.angle_error_per_phi_eps);
    if (t.passthrough_max_rel_change > 0)
      out += fmt::format(", pass-through changed by up to {:.3g}", t.passthrough_max_rel_change);
  }
  return out;
}

// The closest misfit is named only among hypotheses that scored outputs; a failure with
// no outputs to score (a shape error, a crash) keeps the last test's finding instead.
void unexplained(Diagnosis& d, const std::string& detail) {
  d.verdict = "unexplained";
  d.kind = DiagnosisKind::unexplained;
  const auto closest = std::min_element(d.tried.begin(), d.tried.end(),
                                        [](const HypothesisScore& a, const HypothesisScore& b) {
                                          if ((a.compared > 0) != (b.compared > 0)) return a.compared > 0;
                                          return a.max_ratio < b.max_ratio;
                                        });
  if (closest == d.tried.end() || closest->compared == 0) {
    d.explanation = "no known bug or convention applies to this failure";
    d.evidence = detail;
    return;
  }
  d.explanation = fmt::format(
      "no known bug or convention explains the outputs; closest: {} (max error/allowed >= {:.3g})",
      closest->name, closest->max_ratio);
  d.evidence = decomposition_evidence(d);
}

// Keeps the verdict's score and the three closest misfits: the file stays small.
void trim_tried(Diagnosis& d) {
  if (d.tried.size() <= 4) return;
  HypothesisScore last = d.tried.back();
  d.tried.pop_back();
  std::partial_sort(
      d.tried.begin(), d.tried.begin() + 3, d.tried.end(),
      [](const HypothesisScore& a, const HypothesisScore& b) { return a.max_ratio < b.max_ratio; });
  d.tried.resize(3);
  d.tried.push_back(std::move(last));
}

}  // namespace

namespace {

// The (lead, row) sample of q_out (key false) or k_out.
std::vector<SampledRow> sampled(const Case& c, const Record& record, const DiagnosisOptions& options, bool key) {
  return sample_rows(c.batch * c.heads, key ? c.key_rows() : c.seq_len, options.max_rows,
                     failing_rows(record, key ? "k_out" : "q_out", c.heads));
}

// Samples the rows, decomposes, estimates and scores SPEC itself.
void examine_outputs(const Case& c, Evidence& ev, Diagnosis& d, const DiagnosisOptions& options) {
  ev.q_rows = sampled(c, ev.record, options, false);
  ev.k_rows = sampled(c, ev.record, options, true);
  ev.decomposition = decompose(ev);
  ev.estimates = estimate_conventions(c, ev.dtype, ev.decomposition);
  d.spec = score_convention(ev, spec_convention(c));
  d.spec.name = "SPEC";
}

// The first hypothesis of the table that fits among those `wanted`, or null; every
// score goes to d.tried.
template <class Wanted>
const Hypothesis* first_fit(const Evidence& ev, const Context& ctx, Diagnosis& d,
                            std::string& detail, Wanted wanted) {
  for (const Hypothesis& h : hypotheses()) {
    if (!wanted(h) || (h.perturb && !ctx.has_outputs) || !h.applies(ctx)) continue;
    HypothesisScore s = h.perturb ? score_convention(ev, h.perturb(ctx, spec_convention(ctx.c)))
                                  : h.test(ev, detail);
    s.name = h.name;
    d.tried.push_back(s);
    if (s.fits) return &h;
  }
  return nullptr;
}

// NONFINITE, or OUT_OF_RANGE whose representable part is: the candidate's values
// overflow where the golden ones are in range.
bool nonfinite_in_range(const Record& record) {
  return record.outcome == Outcome::nonfinite ||
         (record.outcome == Outcome::out_of_range && record.range &&
          record.range->in_range_outcome == outcome_name(Outcome::nonfinite));
}

}  // namespace

bool diagnosis::logits_pass(const Record& record) {
  const TensorStats* logits = logits_of(record);
  return logits && logits->over_tolerance == 0 && !logits->bias_fails();
}

namespace {

// A convention keeps the logits: when they fail too, the difference is a bug.
void demote_if_logits_fail(const Record& record, Diagnosis& d) {
  const TensorStats* logits = logits_of(record);
  if (d.kind != DiagnosisKind::convention || logits_pass(record)) return;
  // Non-finite outputs leave no logits to compare (the convention's fit has already
  // placed every infinity where the convention's own values overflow the dtype), nor do
  // golden values beyond the dtype (an accepted convention is then judged again in its
  // own frame: judge_in_frame).
  if (!logits && (nonfinite_in_range(record) || record.outcome == Outcome::out_of_range)) return;
  d.kind = DiagnosisKind::bug;
  d.convention.clear();
  d.grid_setting.clear();
  d.evidence += logits ? "; the logits fail too, so this is not a convention alone" : "";
}

// A convention's frame, kept beside the diagnosis for judge_in_frame.
using Frame = std::optional<ConventionFrame>;

void write_verdict(const Hypothesis& h, const Context& ctx, const std::string& detail,
                   Diagnosis& d, Frame& frame) {
  if (h.frame) frame = h.frame(ctx);
  d.verdict = h.name;
  d.kind = h.kind;
  d.convention = h.convention;
  d.grid_setting = h.grid_setting;
  d.explanation = explain(h, ctx);
  d.evidence = h.perturb ? convention_evidence(d, d.tried.back()) : detail;
  demote_if_logits_fail(ctx.record, d);
}

void write_model_verdict(const ModelVerdict& v, const Record& record, Diagnosis& d, Frame& frame) {
  frame = v.frame;
  d.verdict = v.name;
  d.kind = v.kind;
  d.convention = v.convention;
  d.grid_setting = v.grid_setting;
  d.explanation = v.explanation;
  d.evidence = convention_evidence(d, v.score) + "; estimated from the decomposition";
  demote_if_logits_fail(record, d);
}

// The table before the model, the model, then the loose entries; a candidate that
// declares call-order dependence is asked for a fresh instance first.
bool find_verdict(const Evidence& ev, const Context& ctx, Diagnosis& d, Frame& frame, std::string& detail) {
  const auto history = [](const Hypothesis& h) { return h.test == test_history; };
  const Hypothesis* h = nullptr;
  if (ctx.stateful) h = first_fit(ev, ctx, d, detail, history);
  if (!h) h = first_fit(ev, ctx, d, detail, [&](const Hypothesis& x) { return !x.after_model; });
  if (h) return write_verdict(*h, ctx, detail, d, frame), true;
  if (ctx.has_outputs) {
    if (const auto model = fit_model(ev, d.tried)) return write_model_verdict(*model, ctx.record, d, frame), true;
  }
  h = first_fit(ev, ctx, d, detail, [&](const Hypothesis& x) {
    return x.after_model && !(ctx.stateful && history(x));
  });
  if (h) return write_verdict(*h, ctx, detail, d, frame), true;
  return false;
}

}  // namespace

DiagnosisRows diagnosis_rows(const Case& c, const Record& record, const DiagnosisOptions& options) {
  DiagnosisRows out;
  for (const bool key : {false, true}) {
    std::vector<long>& rows = key ? out.key : out.query;
    for (const SampledRow& s : sampled(c, record, options, key)) rows.push_back(s.row);
    std::sort(rows.begin(), rows.end());
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  }
  return out;
}

std::optional<long> held_index(const std::vector<long>& held, long row) {
  const auto it = std::lower_bound(held.begin(), held.end(), row);
  if (it == held.end() || *it != row) return std::nullopt;
  return static_cast<long>(it - held.begin());
}

namespace {

Diagnosis diagnose_framed(const DiagnosisInput& in, const Record& record, const DiagnosisOptions& options,
                          Frame& frame) {
  const auto t0 = std::chrono::steady_clock::now();
  const Case& c = *in.params;
  const CandidateOutput* output = shapes_match(in) ? in.output : nullptr;
  Evidence ev{c,      in.dtype,     *in.q_in,    *in.k_in,       *in.golden,     *in.tables, *in.tolerance,
              output, record,       in.fresh_run, in.stateful, in.q_rows_held, in.k_rows_held};
  Diagnosis d;
  if (output) examine_outputs(c, ev, d, options);
  const Context ctx{c,
                    in.dtype,
                    record,
                    ev.estimates,
                    ev.decomposition,
                    output != nullptr,
                    static_cast<bool>(in.fresh_run),
                    in.stateful};
  std::string detail;
  const bool explained = find_verdict(ev, ctx, d, frame, detail);
  d.estimates = ev.estimates;
  d.decomposition = std::move(ev.decomposition);
  if (!explained) unexplained(d, detail);
  trim_tried(d);
  for (TensorDecomposition& t : d.decomposition) keep_representative_fits(t);
  d.seconds = detail::seconds_since(t0);
  return d;
}

}  // namespace

Diagnosis diagnose(const DiagnosisInput& in, const Record& record, const DiagnosisOptions& options) {
  Frame frame;
  return diagnose_framed(in, record, options, frame);
}

namespace {

// Every convention the diagnosis names is among the accepted ones.
bool all_accepted(const std::string& conventions, const std::vector<std::string>& accepted) {
  if (conventions.empty()) return false;
  std::size_t start = 0;
  while (start <= conventions.size()) {
    const std::size_t end = std::min(conventions.find(',', start), conventions.size());
    if (std::find(accepted.begin(), accepted.end(), conventions.substr(start, end - start)) == accepted.end())
      return false;
    start = end + 1;
  }
  return true;
}

// The query rows the record's logits cover, of its N (each with every key).
long logit_rows_covered(const Record& record, const TensorStats& logits) {
  const Case& c = record.params;
  const long per_row = c.batch * c.heads * c.key_rows();
  return per_row > 0 ? static_cast<long>(logits.elements) / per_row : 0;
}

// An accepted convention the case was not judged again in the frame of: its logits
// are all that can show a bug beside it, so it passes on them only where they cover
// every query row (with every key); otherwise the record keeps failing and says why.
void accept_unjudged(Record& record, Diagnosis& d, const std::string& why) {
  const TensorStats* logits = logits_of(record);
  const long covered = logits ? logit_rows_covered(record, *logits) : 0;
  const std::string cannot =
      fmt::format("the accepted {} convention is judged again in its own frame, which this case cannot be ({})",
                  d.convention, why);
  if (record.outcome != Outcome::tolerance) {
    record.message += "; " + cannot;
    return;
  }
  if (!logits || covered < record.params.seq_len) {
    record.message = fmt::format("convention-only: {}; logits pass, elementwise outputs differ ({}); {}, and its "
                                 "logits cover {} of the {} query rows",
                                 d.explanation, record.message, cannot, covered, record.params.seq_len);
    return;
  }
  d.accepted = true;
  record.outcome = Outcome::pass;
  record.max_ratio = logits->max_ratio;
  record.message = fmt::format(
      "passes on logits (margin {:.3g}x), which cover every query row with every key (not judged in the "
      "convention's frame: {}); elementwise outputs follow another {} convention, accepted: {}",
      logits->max_ratio > 0 ? 1.0 / logits->max_ratio : INFINITY, why, d.convention, d.explanation);
}

// A convention not accepted: the record keeps its outcome and says what to accept.
void describe_convention(Record& record, const Diagnosis& d) {
  if (record.outcome == Outcome::tolerance) {
    const std::string setting = d.grid_setting.empty() ? "" : " (or set " + d.grid_setting + " in the grid)";
    record.message = fmt::format(
        "convention-only: {}; logits pass, elementwise outputs differ "
        "({}); accept with --accept-convention {}{}",
        d.explanation, record.message, d.convention, setting);
  } else if (in_range_part_fails(record) && !nonfinite_in_range(record)) {
    record.message +=
        fmt::format("; convention-only: {}; accept with --accept-convention {}", d.explanation, d.convention);
  }
}

void attach(Record& record, Diagnosis d, const DiagnosisOptions& options, const std::string& unjudged) {
  if (d.kind == DiagnosisKind::convention && !d.accepted && fails_gate(record)) {
    if (all_accepted(d.convention, options.accept_conventions)) accept_unjudged(record, d, unjudged);
    else describe_convention(record, d);
  }
  record.diagnosis = std::move(d);
}

// Where a convention is accepted, the case is judged again in the convention's frame,
// every element and the logits, from the same inputs and outputs: a sample of rows and
// logits of a sample of query rows can both miss a bug beside the convention (one row
// off). Passing there accepts it; failing there shows a bug beside the convention.
// Returns why the case cannot be judged there (empty when it was, or need not be).
std::string judge_in_frame(const DiagnosisInput& in, const Frame& frame, Record& record, Diagnosis& d,
                           const DiagnosisOptions& options) {
  if (d.kind != DiagnosisKind::convention || !fails_gate(record) ||
      !all_accepted(d.convention, options.accept_conventions))
    return "";
  if (!in.output) return "no outputs to judge";
  if (!frame) return "it has no frame";
  if (in.tolerance->rule == ToleranceRule::relative) return "the relative rule's yardstick ran in SPEC's frame";
  if (frame->params.positions || frame->params.packed) return "explicit positions have no first position to move";
  if (!in.judge_frame && !(in.q_rows_held.empty() && in.k_rows_held.empty())) return "only sampled rows are held";
  const Record moved = in.judge_frame ? in.judge_frame(*frame) : judged_whole_in_frame(in, *frame);
  const std::string where =
      d.grid_setting.empty()
          ? fmt::format("q and k centred at {:g}", static_cast<double>(frame->params.centre()) + frame->centre_offset)
          : d.grid_setting;
  if (fails_gate(moved)) {
    d.kind = DiagnosisKind::bug;
    d.convention.clear();
    d.evidence += fmt::format("; judged again in that frame ({}), the outputs still fail: {}", where, moved.message);
    d.grid_setting.clear();
    return "";
  }
  d.accepted = true;
  record.message = fmt::format("passes in the frame of the accepted {} convention ({}), every element judged "
                               "there: {}; in SPEC's frame: {}",
                               d.convention, where, moved.message, record.message);
  record.outcome = moved.outcome;
  record.range = moved.range;
  record.max_ratio = moved.max_ratio;
  return "";
}

}  // namespace

void attach_diagnosis(Record& record, Diagnosis d, const DiagnosisOptions& options) {
  attach(record, std::move(d), options, "not judged there");
}

void diagnose_record(const DiagnosisInput& input, Record& record, const DiagnosisOptions& options) {
  if (!options.enabled || !wants_diagnosis(record)) return;
  Frame frame;
  Diagnosis d = diagnose_framed(input, record, options, frame);
  const std::string unjudged = judge_in_frame(input, frame, record, d, options);
  attach(record, std::move(d), options, unjudged);
}

std::vector<HypothesisInfo> hypothesis_catalogue(const Case* example) {
  Record record;
  if (example) record.params = *example;
  const Estimates none;
  const std::vector<TensorDecomposition> no_parts;
  const Context ctx{record.params, DType::bf16, record, none, no_parts, true, true, false};
  std::vector<HypothesisInfo> out;
  for (const Hypothesis& h : hypotheses()) {
    out.push_back({std::string(h.name), std::string(diagnosis_kind_name(h.kind)), std::string(h.convention),
                   example ? explain(h, ctx) : std::string(h.explanation)});
  }
  return out;
}

std::string summary_line(const Diagnosis& d) {
  return fmt::format("{} ({}): {}{}", d.verdict, diagnosis_kind_name(d.kind), d.explanation,
                     d.accepted ? " [accepted]" : "");
}

}  // namespace xposcheck
