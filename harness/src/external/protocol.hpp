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

// The protocol's names, spelled here alone on the C++ side; the Python helper spells
// them in python/xposcheck_candidate/names.py, and a test checks that the two agree.
inline constexpr int kProtocolVersion = 1;
inline constexpr const char* kProtocolName = "xposcheck-candidate";
inline constexpr const char* kManifestFile = "manifest.json";
// Written by a candidate into its work directory to say what it supports.
inline constexpr const char* kCapabilitiesFile = "candidate.json";
// Written by a candidate after its last case: the harness then ends the process
// without waiting for its exit (an interpreter's teardown can take a second).
inline constexpr const char* kDoneFile = "done.json";
// Environment of a process that may serve several batches: after done.json it waits
// for next.json in the same directory, naming the next batch's work directory.
inline constexpr const char* kServeEnv = "XPOSCHECK_SERVE";
inline constexpr const char* kNextFile = "next.json";
// Environment of a prestarted candidate: wait for manifest.json, and give up when the
// process with this pid (the harness) is gone.
inline constexpr const char* kWaitForManifestEnv = "XPOSCHECK_WAIT_FOR_MANIFEST";
inline constexpr const char* kHarnessPidEnv = "XPOSCHECK_HARNESS_PID";
// Set in every candidate process's environment unless the harness's own environment
// sets the name; neither changes a value (docs/protocol.md, "A candidate's
// environment"). Idle OpenMP threads sleep at once instead of spinning, since the
// verification shares the cores with the candidate; glibc keeps freed blocks under
// 32 MiB in the process instead of handing them back to the kernel, so that a
// framework allocating fresh memory for every intermediate (PyTorch on CPU) does not
// spend its time in page faults.
struct EnvDefault {
  const char* name;
  const char* value;
};
inline constexpr EnvDefault kCandidateEnvDefaults[] = {
    {"OMP_WAIT_POLICY", "PASSIVE"},
    {"GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296"}};
// The files of one case are its id followed by these.
inline constexpr const char* kQInSuffix = ".q_in.npy";
inline constexpr const char* kKInSuffix = ".k_in.npy";
inline constexpr const char* kQOutSuffix = ".q_out.npy";
inline constexpr const char* kKOutSuffix = ".k_out.npy";
inline constexpr const char* kErrorSuffix = ".error.json";
inline constexpr const char* kResultSuffix = ".result.json";
// A backward case: the upstream gradients in, the gradients of q and k out.
inline constexpr const char* kGqSuffix = ".g_q.npy";
inline constexpr const char* kGkSuffix = ".g_k.npy";
inline constexpr const char* kDqSuffix = ".dq.npy";
inline constexpr const char* kDkSuffix = ".dk.npy";
// A manifest case's pass (absent: forward; its values are pass_name's), and the
// candidate.json key by which a candidate says it computes the backward pass (only
// then is it sent backward cases).
inline constexpr const char* kPassKey = "pass";
inline constexpr const char* kBackwardCapability = "backward";

// The files of one case in a work directory; names start with the case's id. For a
// backward case q_out and k_out are the dq and dk files, and g_q and g_k are set.
struct CaseFiles {
  std::string id;  // "c007": the job's index in the sweep's batch
  std::filesystem::path q_in, k_in, q_out, k_out, error, result;
  std::filesystem::path g_q, g_k;  // backward only
};

CaseFiles case_files(const std::filesystem::path& dir, std::size_t index, Pass pass = Pass::forward);

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
