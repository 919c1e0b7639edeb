#include "xposcheck/harness/packed.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

#include "xposcheck/harness/compare.hpp"
#include "xposcheck/harness/gate.hpp"
#include "xposcheck/reference/packed.hpp"

namespace xposcheck {
namespace {

// Error curves of the sequences over one range of positions: each bin takes the worst
// of the sequences' bins it overlaps.
std::vector<PositionBin> merge_curves(const std::vector<const std::vector<PositionBin>*>& curves) {
  long first = 0, last = -1;
  std::size_t bins = 0;
  for (const auto* curve : curves) {
    for (const PositionBin& b : *curve) {
      if (last < first) first = b.first, last = b.last;
      first = std::min(first, b.first);
      last = std::max(last, b.last);
    }
    bins = std::max(bins, curve->size());
  }
  if (last < first || bins == 0) return {};
  bins = static_cast<std::size_t>(std::min<long>(static_cast<long>(bins), last - first + 1));
  std::vector<PositionBin> out(bins);
  const long span = last - first + 1;
  for (std::size_t i = 0; i < bins; ++i) {
    out[i].first = first + static_cast<long>(i) * span / static_cast<long>(bins);
    out[i].last = first + static_cast<long>(i + 1) * span / static_cast<long>(bins) - 1;
  }
  for (const auto* curve : curves) {
    for (const PositionBin& b : *curve) {
      for (PositionBin& o : out) {
        if (b.last < o.first || b.first > o.last) continue;
        o.max_ulps = std::max(o.max_ulps, b.max_ulps);
        o.rms_ulps = std::max(o.rms_ulps, b.rms_ulps);
        o.max_allowed_ulps = std::max(o.max_allowed_ulps, b.max_allowed_ulps);
        o.max_ratio = std::max(o.max_ratio, b.max_ratio);
        o.max_rel = std::max(o.max_rel, b.max_rel);
      }
    }
  }
  return out;
}

// Where sequence `part`'s element sits in the packed tensors.
ElementRef in_packed(const Case& c, std::size_t tensor, long part, ElementRef at) {
  const auto i = static_cast<std::size_t>(part);
  const long q_row = c.packed->first_query_row[i], k_row = c.packed->first_key_row[i];
  at.row += tensor == 1 ? k_row : q_row;
  if (tensor == 2) at.feature += k_row;  // logits: the feature is the key row
  return at;
}

TensorStats merge_tensor(const Case& c, const std::vector<Record>& parts, std::size_t t) {
  TensorStats out;
  double sum = 0, sum_sq = 0;
  std::vector<const std::vector<PositionBin>*> curves;
  const TensorStats* biased = nullptr;
  for (std::size_t p = 0; p < parts.size(); ++p) {
    if (t >= parts[p].tensors.size()) continue;
    const TensorStats& s = parts[p].tensors[t];
    out.name = s.name;
    if (!s.compared) continue;
    const bool first = !out.compared;
    out.compared = true;
    if (s.nonfinite > 0 && out.nonfinite == 0 && s.first_nonfinite)
      out.first_nonfinite = in_packed(c, t, static_cast<long>(p), *s.first_nonfinite);
    out.nonfinite += s.nonfinite;
    out.over_tolerance += s.over_tolerance;
    if (first || s.max_ratio > out.max_ratio) {
      out.max_ratio = s.max_ratio;
      out.worst = in_packed(c, t, static_cast<long>(p), s.worst);
    }
    out.max_ulps = std::max(out.max_ulps, s.max_ulps);
    out.max_abs = std::max(out.max_abs, s.max_abs);
    out.max_rel = std::max(out.max_rel, s.max_rel);
    const auto n = static_cast<double>(s.elements);
    out.elements += s.elements;
    sum += s.mean_ulps * n;
    sum_sq += s.rms_ulps * s.rms_ulps * n;
    curves.push_back(&s.curve);
    if (s.bias && (!biased || s.bias_ratio() > biased->bias_ratio())) biased = &s;
  }
  if (out.elements > 0) {
    out.mean_ulps = sum / static_cast<double>(out.elements);
    out.rms_ulps = std::sqrt(sum_sq / static_cast<double>(out.elements));
  }
  out.curve = merge_curves(curves);
  if (biased) {
    out.bias = biased->bias;
    out.bias_allowed = biased->bias_allowed;
  }
  return out;
}

// The sequence whose verdict the batch's record tells: the first failing the gate, else
// the first out of range, else the one nearest its tolerance.
std::size_t representative(const std::vector<Record>& parts) {
  for (std::size_t i = 0; i < parts.size(); ++i)
    if (fails_gate(parts[i])) return i;
  for (std::size_t i = 0; i < parts.size(); ++i)
    if (parts[i].outcome != Outcome::pass) return i;
  std::size_t best = 0;
  for (std::size_t i = 1; i < parts.size(); ++i)
    if (parts[i].max_ratio > parts[best].max_ratio) best = i;
  return best;
}

std::string sequence_label(const Case& c, long i) {
  const Case one = c.sequence_case(i);
  return fmt::format("sequence {} of {} (N = {}, M = {}, positions {}..{})", i, c.packed->count(), one.seq_len,
                     one.mem_len, one.lowest_position(), one.highest_position());
}

}  // namespace

CandidateOutput sequence_output(const Case& c, const CandidateOutput& out, long i) {
  CandidateOutput part;
  part.q_out = sequence_queries(c, out.q_out, i);
  part.k_out = sequence_keys(c, out.k_out, i);
  part.q_dtype = out.q_dtype;
  part.k_dtype = out.k_dtype;
  return part;
}

void merge_sequence_records(const Case& c, const std::vector<Record>& parts, Record& whole) {
  PackedVerdict verdict;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const Case one = c.sequence_case(static_cast<long>(i));
    verdict.sequences.push_back({static_cast<long>(i), one.seq_len, one.mem_len, one.first_key_position(),
                                 c.packed->first_query_row[i], c.packed->first_key_row[i], parts[i].outcome,
                                 parts[i].max_ratio, parts[i].message});
    if (fails_gate(parts[i])) verdict.failing.push_back(static_cast<long>(i));
  }
  const std::size_t r = representative(parts);
  const Record& shown = parts[r];
  whole.outcome = shown.outcome;
  whole.shape = shown.shape;
  whole.range = shown.range;
  whole.diagnosis = shown.diagnosis;
  whole.tensors.clear();
  std::size_t tensors = 0;
  for (const Record& p : parts) tensors = std::max(tensors, p.tensors.size());
  for (std::size_t t = 0; t < tensors; ++t) whole.tensors.push_back(merge_tensor(c, parts, t));
  whole.max_ratio = 0;
  for (const Record& p : parts) whole.max_ratio = std::max(whole.max_ratio, p.max_ratio);
  const std::string count = verdict.failing.empty()
                                ? fmt::format("every one of {} sequences passes the gate", parts.size())
                                : fmt::format("{} of {} sequences fail", verdict.failing.size(), parts.size());
  whole.message = fmt::format("{}; {}: {}", count, sequence_label(c, static_cast<long>(r)), shown.message);
  whole.packed = std::move(verdict);
}

std::optional<Diagnosis> positions_continue(const Case& c, DType dtype, const Tolerance& tol, long i,
                                            const Tensor& q_in, const Tensor& k_in,
                                            const CandidateOutput& output) {
  const long shift = c.packed->first_key_row[static_cast<std::size_t>(i)];
  if (i == 0 || shift == 0) return std::nullopt;
  const Case one = c.sequence_case(i);
  for (const bool centre_moves : {true, false}) {
    Case moved = one.shifted(shift);
    if (!centre_moves) moved.center = one.centre();
    try {
      validate(moved);
    } catch (const InvalidParameter&) {
      continue;
    }
    GoldenOptions outputs_only = judging_golden_options(moved, 0);
    outputs_only.logits = false;
    const Golden golden = golden_fast(moved, q_in, k_in, outputs_only);
    Record probe;
    compare_outputs(moved, dtype, golden, *shared_tables(moved), output, tol, probe);
    if (fails_gate(probe)) continue;  // beyond the envelope, the part the dtype holds must match
    Diagnosis d;
    d.verdict = "packed-positions-continue";
    d.kind = DiagnosisKind::bug;
    d.explanation = fmt::format(
        "sequence {}'s rows sit at positions continued from the sequences before it: shifted by +{} (the key "
        "rows of sequences 0..{}){}; positions must restart at every sequence boundary (cu_seqlens)",
        i, shift, i - 1, centre_moves ? ", the XPOS centre moved along" : ", the XPOS centre not");
    d.evidence = fmt::format("its outputs match the golden outputs of positions {}..{} within tolerance (margin {:.3g}x)",
                             moved.lowest_position(), moved.highest_position(),
                             probe.max_ratio > 0 ? 1 / probe.max_ratio : INFINITY);
    return d;
  }
  return std::nullopt;
}

}  // namespace xposcheck
