// The backward pass's diagnosis: one hypothesis, the likeliest way to get the
// transpose wrong. A backward pass that applies the forward map to the upstream
// gradients rotates them by +phi instead of -phi; its dq and dk are then the golden
// forward outputs of (g_q, g_k), and comparing with those says so.
#include <chrono>

#include <fmt/format.h>

#include "elapsed.hpp"
#include "xposcheck/harness/compare.hpp"
#include "xposcheck/harness/diagnosis.hpp"
#include "xposcheck/reference/golden.hpp"

namespace xposcheck {
namespace {

constexpr const char* kUntransposed = "untransposed-rotation";

// The candidate's gradients judged as the forward outputs of the upstream gradients.
Record under_untransposed(const BackwardDiagnosisInput& in) {
  GoldenOptions no_logits;
  no_logits.logits = false;
  const Golden forward = golden_fast(*in.params, *in.g_q, *in.g_k, no_logits);
  Record scratch;
  CompareOptions options;
  options.pass = Pass::backward;
  compare_outputs(*in.params, in.dtype, forward, *in.tables, *in.output, *in.tolerance, scratch, options);
  return scratch;
}

Diagnosis diagnose_backward(const BackwardDiagnosisInput& in, const Record& record) {
  Diagnosis d;
  d.verdict = "unexplained";
  d.kind = DiagnosisKind::unexplained;
  if (!in.output || record.outcome == Outcome::dim_mismatch) {
    d.explanation = fmt::format("the backward diagnosis tests one hypothesis ({}: the gradient "
                                "rotated by +phi), which needs gradients of the right shape",
                                kUntransposed);
    return d;
  }
  const Record scratch = under_untransposed(in);
  d.tried.push_back({kUntransposed, scratch.outcome == Outcome::pass, scratch.max_ratio});
  if (scratch.outcome == Outcome::pass) {
    d.verdict = kUntransposed;
    d.kind = DiagnosisKind::bug;
    d.explanation = "gradient rotated by +phi: dq and dk are the forward rotation of the upstream "
                    "gradients, not its transpose (a rotation by -phi with the same XPOS scale)";
    d.evidence = fmt::format("against the golden gradients max error/allowed {:.4g}; against the "
                             "upstream gradients rotated by +phi {:.3g}",
                             record.max_ratio, scratch.max_ratio);
    return d;
  }
  d.explanation = fmt::format("the backward diagnosis tests one hypothesis ({}: the gradient rotated "
                              "by +phi); it does not explain these gradients (max error/allowed {:.3g} "
                              "under it)", kUntransposed, scratch.max_ratio);
  return d;
}

}  // namespace

void diagnose_backward_record(const BackwardDiagnosisInput& input, Record& record,
                              const DiagnosisOptions& options) {
  if (!options.enabled || !wants_diagnosis(record)) return;
  const auto t0 = std::chrono::steady_clock::now();
  Diagnosis d = diagnose_backward(input, record);
  d.seconds = detail::seconds_since(t0);
  record.diagnosis = std::move(d);
}

}  // namespace xposcheck
