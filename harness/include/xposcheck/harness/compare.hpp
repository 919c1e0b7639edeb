#pragma once
// Comparison of a candidate's outputs with the golden ones: shapes and dtypes first,
// then values in dtype ulps at the pair magnitude, position-aware tolerances.
#include <functional>
#include <memory>
#include <vector>

#include "xposcheck/harness/candidate.hpp"
#include "xposcheck/harness/record.hpp"
#include "xposcheck/harness/tolerance.hpp"
#include "xposcheck/reference/golden.hpp"
#include "xposcheck/reference/tables.hpp"

namespace xposcheck {

struct CompareOptions {
  std::size_t curve_bins = 48;
  // Relative rule: the fp32-angles candidate's record on the same inputs; each
  // tensor may be off by relative_k times its max error plus the floor.
  const Record* yardstick = nullptr;
  // Streams: the key rows query row m saw (the keys cached when its call ran); the
  // logits of later keys are no part of what attention computed. Empty: every key.
  std::function<long(long m)> visible_keys;
  // Backward: the golden outputs are the golden gradients, the tensors are named dq
  // and dk, and there are no logits to compare.
  Pass pass = Pass::forward;
};

// How many query rows have their logits compared: a deterministic sample (at least 8,
// at most max_rows; 0: no cap) sized so that each logits pass stays near 2^24
// multiply-adds, since it costs rows * (M+N) * D per head for the golden path and
// again per candidate.
std::size_t logit_rows_for(const Case& c, std::size_t max_rows);

// The golden outputs a candidate is judged against, whole or in blocks: outputs from
// the tables' high words (within 5 fp64 ulps of the pair magnitude, 2^-26 of an
// fp32 ulp; GoldenOptions::correctly_rounded), logits of logit_rows_for's sample by
// plain fp64 products of those outputs (their error stays 2^-30 below any dtype's
// tolerance; GoldenOptions::double_double_logits).
GoldenOptions judging_golden_options(const Case& c, std::size_t max_rows);

// Fills record.outcome, message, tensors, shape, range and max_ratio.
void compare_outputs(const Case& c, DType dtype, const Golden& golden,
                     const RotaryTables& tables, const CandidateOutput& output,
                     const Tolerance& tolerance, Record& record,
                     const CompareOptions& options = {});

// compare_outputs a block of rows at a time, for cases too long to hold whole
// (docs/long-context.md): the query rows in order, then the key rows in order, each
// block laid out [batch * heads][rows][D]. Blocks make the same verdict and statistics
// as the whole tensors (bit for bit but for the logits' sums, which add in another
// order). The shapes are the caller's to check first.
class OutputComparer {
 public:
  // logit_rows: the sampled query rows whose logits add_logits is given.
  OutputComparer(const Case& c, DType dtype, const RotaryTables& tables, const Tolerance& tol,
                 std::vector<long> logit_rows, const CompareOptions& options = {});
  ~OutputComparer();
  OutputComparer(const OutputComparer&) = delete;
  OutputComparer& operator=(const OutputComparer&) = delete;

  void add_query_rows(long first, long count, const double* golden, const double* got);
  void add_key_rows(long first, long count, const double* golden, const double* got);
  // Whether every value so far is finite and within the dtype's envelope: logits are
  // compared only then.
  bool clean_so_far() const;
  // Keys first..first+count-1 against the sampled rows: the golden k_out rows
  // [batch * heads][count][D], and golden and candidate logits [batch * heads][rows][count].
  void add_logits(long first, long count, const double* golden_keys, const double* golden_logits,
                  const double* got_logits);
  // Outcome, message, tensors, range and max_ratio.
  void finish(Record& record);

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// Whether q_out and k_out (dq and dk for the backward pass) have the case's shapes and
// the dtype; if not, the record is DIM_MISMATCH saying which and how.
bool check_output_shapes(const Case& c, DType dtype, const CandidateOutput& output, Record& record,
                         Pass pass = Pass::forward);

// Turns a failed attempt into the record's outcome and evidence.
void record_failure(const Case& c, const CandidateFailure& failure, Record& record);

}  // namespace xposcheck
