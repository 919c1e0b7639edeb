#pragma once
// A batch's work directory together with the candidate process serving it. A process
// may be started before its batch is known ("prestarted"), when the candidate said it
// can wait for its manifest: its start-up (an interpreter importing PyTorch takes
// seconds) then overlaps the harness's own work on the batch.
#include <filesystem>
#include <memory>

#include "external/work_dir.hpp"
#include "xposcheck/harness/process.hpp"
#include "xposcheck/harness/subprocess_candidate.hpp"

namespace xposcheck::external {

// Environment of a prestarted candidate: wait for manifest.json, and give up when the
// process with this pid (the harness) is gone.
inline constexpr const char* kWaitForManifestEnv = "XPOSCHECK_WAIT_FOR_MANIFEST";
inline constexpr const char* kHarnessPidEnv = "XPOSCHECK_HARNESS_PID";
// Written by a candidate into its work directory to say what it supports.
inline constexpr const char* kCapabilitiesFile = "candidate.json";
// Written by a candidate after its last case: the harness then ends the process
// without waiting for its exit (an interpreter's teardown can take a second).
inline constexpr const char* kDoneFile = "done.json";

struct Launch {
  WorkDir dir;
  std::unique_ptr<ChildProcess> process;  // null until started

  explicit Launch(const SubprocessOptions& o) : dir(o.temp_root, o.name, o.keep_work_dirs) {}
  // Runs the command with the work directory as its last argument.
  void start(const SubprocessOptions& o, bool wait_for_manifest);
  // Waits for the process to exit or report itself done (see ChildProcess::wait).
  ProcessResult wait(double time_limit_s);
};

// Whether the candidate that served this work directory can wait for its manifest.
bool can_wait_for_manifest(const std::filesystem::path& dir);

}  // namespace xposcheck::external
