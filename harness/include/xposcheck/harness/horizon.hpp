#pragma once
// The accuracy horizon (docs/long-context.md): the first position, moving outward from
// position 0, where a candidate's relative error exceeds a threshold, read from the
// per-bin relative errors of the error curves. Information for long-context use: it
// never changes an outcome or the gate.
#include <map>
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include "xposcheck/harness/results.hpp"

namespace xposcheck {

// The default threshold, 2^-8 of the pair magnitude: about bf16's rounding of the
// outputs themselves (half an ulp is 2^-9..2^-8 of the magnitude).
inline constexpr double kHorizonThreshold = 0x1p-8;

// The horizon of one record's tensors: over the compared rotated tensors (not the
// logits), the bin with the smallest |p| whose max_rel exceeds `threshold` (ties: the
// smaller largest |p|, then q before k). Unset when no such tensor has a curve.
std::optional<AccuracyHorizon> record_horizon(const std::vector<TensorStats>& tensors, double threshold);
// The same for a record, unset when its diagnosis accepted a convention: its curves
// measure SPEC's frame, which its outputs do not follow, so they say nothing of its
// accuracy in the frame it was accepted in.
std::optional<AccuracyHorizon> record_horizon(const Record& r, double threshold);

// Per candidate and dtype, over the forward records: the record whose first bin over
// the threshold ends nearest position 0 (the tightest evidence, and the worst case over
// the grid's other axes), and the largest |p| any record covers.
struct HorizonSummary {
  std::string candidate;
  DType dtype = DType::fp32;
  double threshold = kHorizonThreshold;
  std::optional<AccuracyHorizon> nearest;  // unset: no record exceeds the threshold
  std::string case_id;                     // the record of `nearest`
  long reach = 0;
  long read_from = 0;           // records with curves the horizon is read from
  long convention_left_out = 0;  // records accepted under a convention (no horizon)
};

// The summaries, one record at a time (for reporters, which see records so).
class HorizonTable {
 public:
  // threshold: the run's (--horizon), stated for a group whose records were all left out.
  explicit HorizonTable(double threshold = kHorizonThreshold) : threshold_(threshold) {}
  void add(const Record& r);
  // Ordered by candidate name, then dtype; records without a horizon are left out.
  std::vector<HorizonSummary> summaries() const;

 private:
  double threshold_;
  std::map<std::pair<std::string, DType>, HorizonSummary> groups_;
};

std::vector<HorizonSummary> compute_horizons(const Results& results);

// "2^-8" for a power of two, else the number ("0.001").
std::string threshold_text(double threshold);

// "2^-8", "2^-10.5", "0.004", "1e-3": the threshold, or an error message saying what
// is wanted (a finite number in (0, 1]).
struct ParsedThreshold {
  std::optional<double> value;
  std::string error;
};
ParsedThreshold parse_threshold(const std::string& text);

// "error > 2^-8 beyond position ~256 (first exceeded at |p| 256..277 of q_out in
// D128-N1024-s1)" or "no horizon within the grid (error <= 2^-8 up to position 65535)",
// followed by "; 6 records accepted under a convention left out (...)" when there are
// such records, or only that when no record is left to read it from.
std::string describe_horizon_reach(const HorizonSummary& h);
// "horizon fp32-angles bf16: " followed by the above.
std::string describe_horizon(const HorizonSummary& h);

}  // namespace xposcheck
