#pragma once
// Streams (docs/streams.md): a case run the way a decoder with a KV cache runs it, a
// prefill and then steps, each call with only its new rows at their true positions.
// The harness joins the calls' outputs into the whole case's tensors (the keys it
// keeps are the keys the candidate returned, as attention keeps them) and judges
// them as one case, causally, then reads a verdict per step.
#include <span>
#include <vector>

#include "xposcheck/harness/candidate.hpp"
#include "xposcheck/harness/record.hpp"

namespace xposcheck {

// The calls of a stream: each call's case (Case::stream_call) and its inputs, rows of
// the whole case's inputs.
struct StreamCalls {
  std::vector<Case> cases;
  std::vector<Tensor> q_in, k_in;
};
StreamCalls stream_calls(const Case& c, const Tensor& q_in, const Tensor& k_in);

// One job per call, in order.
std::vector<Job> stream_jobs(const StreamCalls& calls, DType dtype);

// The calls' attempts joined into one attempt on the whole case: every call's rows at
// their place, or the first failing call's failure with its step named. Shapes and
// dtypes are checked per call, since a wrong one cannot be placed.
Attempt join_stream(const Case& c, DType dtype, const StreamCalls& calls,
                    std::span<const Attempt> attempts);

// Runs every call in order on `instance`, then joins them.
Attempt run_stream(Candidate& instance, const Case& c, DType dtype, const StreamCalls& calls);

// The query rows whose logits a stream compares: a sample of the prefill's (at most
// prefill_rows) and the first and last row of every step.
std::vector<long> stream_logit_rows(const Case& c, std::size_t prefill_rows);

// Key rows visible to query row m of a stream: every key cached when its call ran.
long visible_keys(const Case& c, long query_row);

// Curve bins that give every position its own bin, so that steps can be read off.
std::size_t stream_curve_bins(const Case& c);

// Fills record.stream from curves with one bin per position, then merges the curves
// into `bins` bins for storage.
void read_steps(const Case& c, Record& record, std::size_t bins);

// Compares the stream's outputs with the candidate's own one-call outputs.
void compare_with_one_pass(const Case& c, const CandidateOutput& stream,
                           const CandidateOutput& one_pass, StreamVerdict& verdict);

}  // namespace xposcheck
