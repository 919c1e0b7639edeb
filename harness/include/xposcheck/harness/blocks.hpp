#pragma once
// Long cases judged a block of rows at a time (docs/long-context.md): inputs drawn,
// golden outputs made, candidates called and their outputs compared block by block,
// so that memory stays a few blocks whatever N and M are. The verdict and statistics
// are those of the whole case (compare.hpp, OutputComparer).
#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "xposcheck/cases/grid.hpp"
#include "xposcheck/harness/candidate.hpp"
#include "xposcheck/harness/diagnosis.hpp"
#include "xposcheck/harness/record.hpp"
#include "xposcheck/harness/tolerance.hpp"

namespace xposcheck {

// Above this many bytes of whole tensors (estimated_case_bytes) a case is judged in
// blocks by the candidates that can be (Candidate::rotates_rows).
inline constexpr double kBlockAboveBytes = 1024.0 * 1024 * 1024;

struct BlockOptions {
  long block_rows = 0;  // rows per block; 0: golden_block_rows (about 4 MiB of each tensor)
  std::size_t max_logit_rows = 0;  // as SweepOptions::max_logit_rows
  // Called after every block with "rows in blocks: K of B", for progress within the case.
  std::function<void(const std::string&)> stage;
  // A failing record's diagnosis reads its sampled rows, asked again of the candidate's
  // blocks that hold them (without a fresh instance: call-order dependence untested).
  DiagnosisOptions diagnosis;
};

// Whether case c can be judged in blocks on that pass: a forward pass over
// contiguous positions (no stream, packed batch or explicit positions).
bool judged_in_blocks_possible(const Case& c, Pass pass);

// Whether a sweep judges case c in blocks on that pass (for the candidates that
// rotate rows): when it can and its whole tensors would take more than
// block_above_bytes (estimated_case_bytes with logit_rows).
bool judged_in_blocks(const Case& c, Pass pass, std::size_t logit_rows, double block_above_bytes);

// The bytes judging case c in blocks holds at once, for `candidates` candidates: a
// block of inputs and golden outputs with their logits, and each candidate's block,
// sampled query rows and comparison state, and a failing record's diagnosis sample.
// An estimate within a small factor.
double estimated_block_bytes(const Case& c, std::size_t logit_rows, std::size_t candidates);

// One record per candidate (each rotates_rows()), in order, from one pass over the
// blocks: the golden values are made once for all of them. A candidate that throws on
// a block gets the record of that failure (DIM_MISMATCH for a ShapeError, CRASH
// otherwise) and is not called again. yardstick: the relative rule's record on this
// case (docs/tolerances.md). Failing records are diagnosed as options.diagnosis says.
// std::invalid_argument when !judged_in_blocks_possible(gc.params, Pass::forward).
std::vector<Record> judge_in_blocks(std::span<Candidate* const> candidates, const GridCase& gc, DType dtype,
                                    const Tolerance& tolerance, const BlockOptions& options,
                                    const Record* yardstick = nullptr);

// The same for outputs a candidate already made and left in its files (an external
// candidate given a job with input_rows, CandidateOutput::rows): shapes and dtypes
// first (DIM_MISMATCH), then every block read back and judged; a block that cannot be
// read is a CRASH naming why. The record's candidate time is output.seconds.
Record judge_output_in_blocks(const std::string& candidate, const CandidateOutput& output, const GridCase& gc,
                              DType dtype, const Tolerance& tolerance, const BlockOptions& options,
                              const Record* yardstick = nullptr);

}  // namespace xposcheck
