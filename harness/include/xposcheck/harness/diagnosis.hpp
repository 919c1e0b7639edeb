#pragma once
// Diagnosis of a failing record: which known bug (or convention) explains the
// candidate's outputs, with the numbers that show it (docs/diagnosis.md).
//
// Two kinds of evidence. The phase / magnitude decomposition reads, for every rotated
// pair, the rotation angle and log-scale the candidate applied relative to the golden
// output, and fits their errors against position. The differential diagnosis
// re-evaluates the reference under each perturbed convention of one declarative table
// (harness/src/diagnosis/hypotheses.cpp) and keeps the first that explains the
// outputs within the record's tolerance.
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "xposcheck/harness/candidate.hpp"

namespace xposcheck {

struct Golden;
struct Record;
struct Tolerance;
class RotaryTables;

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
  std::vector<FrequencyFit> fits;    // a few representative pairs, lowest j first
};

// What the decomposition suggests: position shifts and XPOS centres, when the errors
// are those of a pure shift (constant over position, consistent over frequencies).
struct Estimates {
  std::optional<double> query_shift, key_shift;
  std::optional<double> query_centre, key_centre;
};

// How well one hypothesis explains the outputs, on the sampled rows.
struct HypothesisScore {
  std::string name;
  bool fits = false;
  double max_ratio = 0;              // max error / allowed; a lower bound when rejected early
  std::size_t compared = 0, over = 0;
};

struct Diagnosis {
  std::string verdict;               // the hypothesis name, or "unexplained"
  std::string kind;                  // "bug", "convention", "precision" or "unexplained"
  std::string explanation;           // one sentence with the numbers that identify it
  std::string evidence;              // how the verdict was reached
  std::string convention;            // "centre" for a convention-only difference
  bool accepted = false;             // the convention was accepted: judged on logits
  HypothesisScore spec;              // the outputs against SPEC itself, on the sample
  std::vector<HypothesisScore> tried;  // in evaluation order, the verdict last
  Estimates estimates;
  std::vector<TensorDecomposition> decomposition;  // q_out, k_out; empty without outputs
  double seconds = 0;                // time the diagnosis took
};

struct DiagnosisOptions {
  bool enabled = true;
  // Conventions judged on the logits alone: "centre" (q and k centred consistently on
  // another position, as torchscale does on the whole key range).
  std::vector<std::string> accept_conventions;
  // (lead, row) samples per tensor; every row when a tensor has at most this many.
  std::size_t max_rows = 256;
};

// Names accepted in accept_conventions.
const std::vector<std::string>& known_conventions();

// Runs the same case on a fresh instance of the candidate: the output, or the failure.
using FreshRun = std::function<Attempt()>;

struct DiagnosisInput {
  const Case* params = nullptr;
  DType dtype = DType::fp32;
  const Tensor* q_in = nullptr;
  const Tensor* k_in = nullptr;
  const Golden* golden = nullptr;
  const RotaryTables* tables = nullptr;
  const Tolerance* tolerance = nullptr;
  const CandidateOutput* output = nullptr;  // null when the candidate failed
  FreshRun fresh_run;                       // empty: history dependence is not tested
  bool stateful = false;                    // the candidate declares call-order dependence
};

// Whether a record's outcome calls for a diagnosis (a failure the values can explain).
bool wants_diagnosis(const Record& record);

Diagnosis diagnose(const DiagnosisInput& input, const Record& record,
                   const DiagnosisOptions& options = {});

// Stores the diagnosis in the record. A convention-only difference keeps TOLERANCE with
// a message saying so, or, when accepted, passes on the logits with the convention noted.
void attach_diagnosis(Record& record, Diagnosis diagnosis, const DiagnosisOptions& options);

// Diagnoses the record when its outcome calls for it and attaches the result.
void diagnose_record(const DiagnosisInput& input, Record& record, const DiagnosisOptions& options);

// "memory-offset-missing (bug): key positions shifted by +100 (= M) ..." on one line.
std::string summary_line(const Diagnosis& d);

// The hypotheses in the order they are tried (docs/diagnosis.md).
struct HypothesisInfo {
  std::string name, kind, convention;
  std::string explanation;  // the template ("... by +{M} (= M) ..."), or written for a case
};
// With `example`, each explanation is written with that case's numbers (in bf16).
std::vector<HypothesisInfo> hypothesis_catalogue(const Case* example = nullptr);

}  // namespace xposcheck
