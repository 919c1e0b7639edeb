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
#include "xposcheck/harness/diagnosis_data.hpp"
#include "xposcheck/reference/case.hpp"

namespace xposcheck {

struct Golden;
struct Record;
struct Tolerance;
class RotaryTables;

struct DiagnosisOptions {
  bool enabled = true;
  // Conventions judged on the logits alone: "origin" (q and k positions shifted
  // alike: counted from the first cached key) and "centre" (q and k centred alike on
  // another position, as torchscale does on the whole key range).
  std::vector<std::string> accept_conventions;
  // (lead, row) samples per tensor; every row when a tensor has at most this many.
  std::size_t max_rows = 256;
};

// Names accepted in accept_conventions.
const std::vector<std::string>& known_conventions();

// Runs the same case on a fresh instance of the candidate: the output, or the failure.
using FreshRun = std::function<Attempt()>;

// The frame of a convention: the case under which SPEC's outputs are the convention's,
// with the XPOS centre moved a further centre_offset (a fraction of a position, which
// no case holds: q and k centred at N/2 for odd N).
struct ConventionFrame {
  Case params;
  double centre_offset = 0;
};

// Moves SPEC's outputs in frame.params to the frame's centre offset: every rotated
// pair of q rows times zeta_j^(-offset/B), of k rows times zeta_j^(offset/B). The
// factors are made once, for every block a frame's pass moves.
class CentreOffsetMove {
 public:
  explicit CentreOffsetMove(const ConventionFrame& frame);
  // `rows` rows of D values of q (query) or k.
  void apply(bool query, double* values, long rows) const;

 private:
  std::vector<double> query_, key_;  // per feature; empty when nothing moves
};

// The case judged again in a convention's frame, every element and the logits, from
// the inputs and outputs already judged (how depends on how they are held).
using FrameJudge = std::function<Record(const ConventionFrame&)>;

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
  // Empty when q_in, golden and output hold every row. A case judged in blocks gives
  // only the rows diagnosis_rows names, ascending: tensors [batch, heads, rows, D].
  std::vector<long> q_rows_held = {}, k_rows_held = {};
  // An accepted convention's frame judged again: empty, the whole tensors above.
  FrameJudge judge_frame = {};
};

// The query and key rows (distinct, ascending) a diagnosis of the record reads: the
// sample it takes of every (batch, head), with the record's worst and first
// non-finite rows. A case judged in blocks gathers these alone (blocks.hpp).
struct DiagnosisRows {
  std::vector<long> query, key;
};
DiagnosisRows diagnosis_rows(const Case& c, const Record& record, const DiagnosisOptions& options);

// The place of `row` among rows held (ascending), or none when it is not held.
std::optional<long> held_index(const std::vector<long>& held, long row);

// Whether a record's outcome calls for a diagnosis (a failure the values can explain).
bool wants_diagnosis(const Record& record);

Diagnosis diagnose(const DiagnosisInput& input, const Record& record,
                   const DiagnosisOptions& options = {});

// Stores the diagnosis in the record. A convention-only difference keeps its outcome
// with a message saying so. Accepted, and not judged again in its frame
// (diagnose_record does that), it passes on its logits when they cover every query row
// and key; otherwise the record keeps failing and says why.
void attach_diagnosis(Record& record, Diagnosis diagnosis, const DiagnosisOptions& options);

// Diagnoses the record when its outcome calls for it and attaches the result. An
// accepted convention is judged again in its frame (input.judge_frame, or the whole
// tensors the input holds), every element and the logits: the record takes that
// outcome, or, failing there, the diagnosis becomes a bug.
void diagnose_record(const DiagnosisInput& input, Record& record, const DiagnosisOptions& options);

// A backward record's diagnosis tests one hypothesis, the gradient rotated by +phi
// (the forward rotation applied to the upstream gradients instead of its transpose:
// verdict "untransposed-rotation"); anything else is unexplained (docs/diagnosis.md).
struct BackwardDiagnosisInput {
  const Case* params = nullptr;
  DType dtype = DType::fp32;
  const Tensor* g_q = nullptr;
  const Tensor* g_k = nullptr;
  const RotaryTables* tables = nullptr;
  const Tolerance* tolerance = nullptr;
  const CandidateOutput* output = nullptr;  // dq and dk; null when the candidate failed
};
void diagnose_backward_record(const BackwardDiagnosisInput& input, Record& record,
                              const DiagnosisOptions& options);


// The hypotheses in the order they are tried (docs/diagnosis.md).
struct HypothesisInfo {
  std::string name, kind, convention;
  std::string explanation;  // the template ("... by +{M} (= M) ..."), or written for a case
};
// With `example`, each explanation is written with that case's numbers (in bf16).
std::vector<HypothesisInfo> hypothesis_catalogue(const Case* example = nullptr);

}  // namespace xposcheck
