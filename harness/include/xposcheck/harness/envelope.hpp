#pragma once
// The safe envelope (SPEC section 2): per candidate, dtype and memory length, the
// longest segment up to which every case of the grid passes.
#include <optional>
#include <string>
#include <vector>

#include "xposcheck/harness/results.hpp"

namespace xposcheck {

struct EnvelopeLimit {
  long mem_len = 0;
  long max_seq_len = 0;          // every case with N <= this passes; 0: not even the shortest
  long first_failing_seq_len = 0;             // the shortest N that does not pass; 0: none
  std::optional<Outcome> first_failure;       // its outcome
  std::string first_failure_case;             // and the case id of that record

  bool all_pass() const { return first_failing_seq_len == 0; }
  bool operator==(const EnvelopeLimit&) const = default;
};

struct Envelope {
  std::string candidate;
  DType dtype = DType::fp32;
  std::vector<EnvelopeLimit> limits;  // by mem_len, ascending

  bool operator==(const Envelope&) const = default;
};

// Over every record of the results, whatever the other axes (layout, head_dim,
// centre...). PASS and DRIFT count as passing: drift is judged on its own.
// Ordered by candidate name, then dtype.
std::vector<Envelope> compute_envelopes(const Results& results);

// "M=0: N<=8191 (N=9000 OUT_OF_RANGE: D128-N9000-s1)", "M=8192: none (N=1
// OUT_OF_RANGE: D8-N1-M8192-s1)" or "M=1: N<=4096 (all pass)".
std::string describe_limit(const EnvelopeLimit& limit);

// "envelope fp32-angles fp16: M=0: N<=8191 (N=9000 OUT_OF_RANGE: D128-N9000-s1), ...".
std::string describe_envelope(const Envelope& envelope);

}  // namespace xposcheck
