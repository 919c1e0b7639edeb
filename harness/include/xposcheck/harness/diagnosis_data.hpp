#pragma once
// What a record stores of its diagnosis (docs/diagnosis.md): plain data, so that
// results files and reporters need no part of the engine (diagnosis.hpp).
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace xposcheck {

// A least-squares line y = slope * p + intercept over the sampled positions p.
struct LineFit {
  double slope = 0, intercept = 0;
  double residual = 0;          // rms of y - line
};

// Angle and log-scale errors of one rotated pair j as functions of position.
struct FrequencyFit {
  long pair = 0;
  double omega = 0;             // SPEC's phi(p, j) / p: radians per position
  double lambda = 0;            // SPEC's ln sigma(p, j) / (p - c): 0 when xpos is off
  LineFit angle;                // radians, unwrapped along position
  LineFit log_scale;            // ln |out / golden|
};

// The decomposition of one tensor (q_out or k_out) over the sampled rows.
struct TensorDecomposition {
  std::string tensor;
  std::size_t pairs_used = 0;
  std::size_t pairs_skipped = 0;     // tiny input magnitude, non-finite or out of range
  double max_angle_error = 0;        // radians, wrapped to (-pi, pi]
  double max_log_scale_error = 0;
  long worst_angle_position = 0, worst_angle_pair = 0;
  // rms angle error over pairs with |phi| >= 8, in units of |phi| times the dtype's unit
  // roundoff: about 0.3-1 when angles were rounded to the dtype, ~0 for fp32 angles.
  double angle_error_per_phi_eps = 0;
  double passthrough_max_rel_change = 0;  // max |out - in| / |in| of pass-through features
  LineFit passthrough_log_scale;     // ln |out / in| of pass-through features against position
  long first_changed = -1, last_changed = -1;  // features whose values changed, -1: none
  std::vector<FrequencyFit> fits;    // a few representative pairs, lowest j first
};

// What the decomposition suggests about the rotary map the candidate applied. Shifts
// are added to SPEC's positions; centres are effective XPOS centres in SPEC's frame;
// scale factors kappa multiply position in the XPOS exponent (1: SPEC, 1/alpha: the
// scale on interpolated positions, -1: the q/k scale swapped, 0: no XPOS).
struct Estimates {
  std::optional<double> query_shift, key_shift;
  std::optional<double> query_centre, key_centre;
  std::optional<double> query_scale_factor, key_scale_factor;
  // The base theta' that the measured per-pair frequencies follow (omega_j =
  // theta'^(-2j/R) / alpha), and the largest relative frequency error of any pair.
  std::optional<double> base;
  std::optional<double> max_frequency_error;
  // Features the candidate changed (first..last), when they differ from 0..R-1.
  std::optional<long> first_changed_feature, last_changed_feature;
  // The pair whose XPOS scale every pass-through feature got, when one pair's did.
  std::optional<long> passthrough_pair;
};

// How well one hypothesis explains the outputs, on the sampled rows.
struct HypothesisScore {
  std::string name;
  bool fits = false;
  double max_ratio = 0;              // max error / allowed; a lower bound when rejected early
  std::size_t compared = 0, over = 0;
};

enum class DiagnosisKind { bug, convention, precision, unexplained };
std::string_view diagnosis_kind_name(DiagnosisKind k);  // "bug", ...
std::optional<DiagnosisKind> parse_diagnosis_kind(std::string_view name);

struct Diagnosis {
  std::string verdict;               // the hypothesis name(s), or "unexplained"
  DiagnosisKind kind = DiagnosisKind::unexplained;
  std::string explanation;           // one sentence with the numbers that identify it
  std::string evidence;              // how the verdict was reached
  // The conventions a convention-only difference follows, comma separated ("origin",
  // "centre", "origin,centre"), and the grid setting under which the candidate's
  // outputs are SPEC's elementwise (e.g. first_position = 0, center = "keys-ceil").
  std::string convention;
  std::string grid_setting;
  bool accepted = false;             // accepted: judged on logits, or again in its own frame
  HypothesisScore spec;              // the outputs against SPEC itself, on the sample
  std::vector<HypothesisScore> tried;  // in evaluation order, the verdict last
  Estimates estimates;
  std::vector<TensorDecomposition> decomposition;  // q_out, k_out; empty without outputs
  double seconds = 0;                // time the diagnosis took
};

// "memory-offset-missing (bug): key positions shifted by +100 (= M) ..." on one line.
std::string summary_line(const Diagnosis& d);

}  // namespace xposcheck
