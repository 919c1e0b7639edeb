#pragma once
// The harness's side of the work-directory protocol (docs/protocol.md): writing a
// batch (manifest.json and inputs) and reading back one case's outcome.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "xposcheck/harness/candidate.hpp"
#include "xposcheck/harness/subprocess_candidate.hpp"

namespace xposcheck::external {

inline constexpr int kProtocolVersion = 1;
inline constexpr const char* kProtocolName = "xposcheck-candidate";

// The files of one case in a work directory; names start with the case's id.
struct CaseFiles {
  std::string id;  // "c007": the job's index in the sweep's batch
  std::filesystem::path q_in, k_in, q_out, k_out, error, result;
};

CaseFiles case_files(const std::filesystem::path& dir, std::size_t index);

struct BatchEntry {
  const Job* job;
  CaseFiles files;
};

// Writes every entry's inputs, then manifest.json (last, so that a manifest means
// the inputs are complete). Throws NpyError or std::runtime_error naming the file.
void write_batch(const std::filesystem::path& dir, const std::string& candidate,
                 const std::vector<BatchEntry>& entries, Bf16Encoding bf16_inputs,
                 double case_time_limit_s);

// What the work directory says about one case.
struct CaseReport {
  bool finished = false;           // outputs or an error record exist
  Attempt attempt = CandidateFailure{FailureKind::crash, ""};
  std::optional<double> compute_s;  // from the result record, when present
  double io_s = 0;                  // its load_s + save_s, when present
};

// Reads the case's error record, or its outputs (validated: readable, dtype), and its
// result record. Never throws: unreadable files become CRASH naming the file.
CaseReport read_case(const Job& job, const CaseFiles& files);

}  // namespace xposcheck::external
