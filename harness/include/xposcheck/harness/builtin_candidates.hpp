#pragma once
// The C++ candidates shipped with xposcheck: correct ones written the ways real code
// is written, and known-buggy models of real bugs (the harness's mutation tests).
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "xposcheck/harness/candidate.hpp"

namespace xposcheck {

enum class BugScope { any, streams, packed };

struct CandidateInfo {
  std::string name;
  std::string description;
  bool correct;            // false for the known-buggy models (of either pass)
  // The diagnosis each failing record of a buggy model must get (docs/diagnosis.md):
  // the planted bug's name, "unexplained" for garbage, "" for correct candidates and
  // for models of a backward bug (whose forward pass is correct).
  std::string expected_verdict = "";
  // Where the bug shows (docs/streams.md): anywhere; only between the calls of a stream
  // (on a case run in one call its state or its centre may show as something else); or
  // only across the sequences of a packed batch (elsewhere it is correct).
  BugScope scope = BugScope::any;
  // The same for the backward records of a model of a backward bug; "" otherwise.
  std::string expected_backward_verdict = "";
};

const std::vector<CandidateInfo>& builtin_candidates();
std::vector<std::string> correct_builtin_names();

// nullptr when no built-in candidate has that name.
std::unique_ptr<Candidate> make_builtin(std::string_view name);

}  // namespace xposcheck
