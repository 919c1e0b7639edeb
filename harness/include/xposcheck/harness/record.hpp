#pragma once
// One result: a (candidate, case, dtype) with its outcome and evidence (SPEC section 3).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "xposcheck/harness/diagnosis_data.hpp"
#include "xposcheck/harness/gate.hpp"
#include "xposcheck/reference/pass.hpp"
#include "xposcheck/reference/case.hpp"
#include "xposcheck/reference/dtype.hpp"

namespace xposcheck {

// An element of q_out / k_out / logits. For logits, row is the query row, feature the
// key row, position the query position and pair -1.
struct ElementRef {
  long batch = 0, head = 0, row = 0, feature = 0;
  long position = 0;
  long pair = -1;          // rotated pair j, or -1 for a pass-through feature
  double got = 0, want = 0;
  double error_ulps = 0;   // |got - want| in dtype ulps at the pair magnitude
  double allowed_ulps = 0;
};

// Error over a range of positions: the drift curve of a tensor.
struct PositionBin {
  long first = 0, last = 0;     // inclusive position range
  double max_ulps = 0;
  double rms_ulps = 0;
  double max_allowed_ulps = 0;  // the tolerance line
  double max_ratio = 0;         // max of error / allowed
  // The largest |got - want| / pair magnitude (the magnitude the ulp unit is taken at):
  // the accuracy horizon reads it (horizon.hpp). 0 in files written before it existed.
  double max_rel = 0;
};

struct TensorStats {
  std::string name;             // "q_out", "k_out", "logits"
  bool compared = false;        // false when skipped (e.g. logits of non-finite outputs)
  std::size_t elements = 0;
  std::size_t over_tolerance = 0;
  std::size_t nonfinite = 0;
  std::optional<ElementRef> first_nonfinite;
  double max_ulps = 0, mean_ulps = 0, rms_ulps = 0;
  double max_abs = 0, max_rel = 0;
  double max_ratio = 0;         // max of error / allowed: <= 1 passes
  ElementRef worst;             // the element with the largest error / allowed
  std::vector<PositionBin> curve;
  // Logits only: the systematic relative error, a least-squares fit of candidate -
  // golden = bias * golden over every compared logit, and what the tolerance allows.
  std::optional<double> bias, bias_allowed;
  bool bias_fails() const { return bias && bias_allowed && std::fabs(*bias) > *bias_allowed; }
  double bias_ratio() const { return bias && bias_allowed && *bias_allowed > 0 ? std::fabs(*bias) / *bias_allowed : 0; }
};

struct ShapeIssue {
  std::string tensor;           // "q_out", "k_out", or "" for an error raised inside
  std::string expected, actual; // shapes "[1, 1, 1024, 128]" or dtype names
  std::string what;             // "shape", "dtype" or "exception"
  std::string relation;         // sizes related to the case, e.g. "1124 = M + N"
};

// Golden values that the dtype cannot hold: the safe envelope is exceeded.
struct RangeIssue {
  std::string tensor;
  std::size_t count = 0;
  long first_position = 0;      // the out-of-range position nearest the centre: where the envelope ends
  double largest_golden = 0;
  std::string in_range_outcome; // what the representable part of the outputs got
};

struct Timing {
  double inputs_s = 0;   // drawing the case's inputs
  double golden_s = 0, candidate_s = 0, compare_s = 0;
};

// Versus a stored baseline (baseline.hpp, docs/baselines.md).
enum class DriftVerdict { unchanged, regressed, improved, new_case };

struct TensorDrift {
  std::string name;
  double baseline_max = 0, max = 0;   // max ulp error then and now
  double baseline_rms = 0, rms = 0;
};

struct DriftInfo {
  DriftVerdict verdict = DriftVerdict::unchanged;
  std::optional<Outcome> baseline_outcome;  // none for a new case
  std::string note;                         // one line: what changed
  std::vector<TensorDrift> tensors;
};

// One call of a stream (docs/streams.md): the largest error / allowed of its new query
// and key rows and of its queries' logits against every key cached so far; 0 where
// nothing was compared.
struct StepVerdict {
  long step = 0;                       // 0: the prefill
  long first_position = 0, last_position = 0;  // of its query rows
  double q_ratio = 0, k_ratio = 0, logits_ratio = 0;
  bool nonfinite = false;              // a non-finite value where the golden one is finite
  bool beyond_range = false;           // golden values beyond the dtype's range
  double max_ratio() const { return std::max({q_ratio, k_ratio, logits_ratio}); }
  // The ratios cover the values the dtype can hold, beyond the envelope too.
  bool fails() const { return nonfinite || max_ratio() > 1.0; }
};

struct StreamVerdict {
  long prefill = 0, step_rows = 0;
  std::vector<StepVerdict> steps;      // the prefill, then every step
  std::optional<long> first_failing_step;
  // The stream's outputs against the candidate's own outputs for the whole case in
  // one call (a fresh instance): the largest difference relative to the row's largest
  // magnitude, and the first differing step. Unset when no fresh instance ran it.
  std::optional<double> one_pass_difference;
  std::optional<long> one_pass_first_step;
};

// Packed batches (docs/streams.md): every sequence judged as a case of its own on its
// rows of the packed outputs.
struct SequenceVerdict {
  long index = 0;
  long seq_len = 0, mem_len = 0;
  long first_position = 0;              // of its key row 0
  long first_query_row = 0, first_key_row = 0;  // where its rows start in the packed tensors
  Outcome outcome = Outcome::pass;
  double max_ratio = 0;
  std::string message;
};

struct PackedVerdict {
  std::vector<SequenceVerdict> sequences;
  std::vector<long> failing;            // the sequences that fail the gate, in order
};

// How far from position 0 the outputs stay within a relative error (horizon.hpp):
// read from the error curves of the rotated tensors (q_out, k_out; dq, dk backward).
struct AccuracyHorizon {
  double threshold = 0;          // relative to the pair magnitude
  // The bin nearest position 0 whose largest relative error exceeds the threshold:
  // its smallest and largest |p|. Unset: no bin exceeds it.
  std::optional<long> near, far;
  std::string tensor;            // the tensor of that bin
  long reach = 0;                // the largest |p| the curves cover
  bool found() const { return near.has_value(); }
  bool operator==(const AccuracyHorizon&) const = default;
};

struct Record {
  std::string candidate;
  std::string case_id;
  Case params;
  std::uint64_t seed = 1;
  DType dtype = DType::fp32;
  Pass pass = Pass::forward;    // which pass it judged: outputs, or gradients (dq, dk)
  Outcome outcome = Outcome::pass;
  std::string message;          // one line saying why, for humans
  double max_ratio = 0;         // over all tensors: margin is 1 / max_ratio
  std::vector<TensorStats> tensors;
  std::optional<ShapeIssue> shape;
  std::optional<RangeIssue> range;
  Timing timing;
  std::optional<Diagnosis> diagnosis;  // failing records: what explains them (diagnosis.hpp)
  std::optional<DriftInfo> drift;       // set when compared with a baseline
  std::optional<StreamVerdict> stream;  // streams: the verdict of every step
  std::optional<PackedVerdict> packed;  // packed batches: the verdict of every sequence
  std::optional<AccuracyHorizon> horizon;  // information, never part of the outcome

  // The key that identifies a record in results, baselines and merges.
  std::string key() const;
};

// Whether the record's diagnosis accepted a convention (--accept-convention): it was
// judged on its logits, or again in the convention's own frame.
inline bool accepted_convention(const Record& r) { return r.diagnosis && r.diagnosis->accepted; }

// "candidate|case|dtype", with "|backward" after it for a backward record (so the
// keys of forward records are what they were before the backward pass existed).
std::string record_key(const std::string& candidate, const std::string& case_id, DType dtype, Pass pass);

}  // namespace xposcheck
