#pragma once
// A batch's work directory together with the candidate process serving it. A process
// may be started before its batch is known ("prestarted"), when the candidate said it
// can wait for its manifest: its start-up (an interpreter importing PyTorch takes
// seconds) then overlaps the harness's own work on the batch. A process that serves
// batches moves on to the next batch's directory (hand_over) instead of exiting.
#include <filesystem>
#include <memory>

#include "external/protocol.hpp"
#include "external/work_dir.hpp"
#include "xposcheck/harness/process.hpp"
#include "xposcheck/harness/subprocess_candidate.hpp"

namespace xposcheck::external {

struct Launch {
  WorkDir dir;
  std::unique_ptr<ChildProcess> process;  // null until started

  explicit Launch(const SubprocessOptions& o) : dir(o.temp_root, o.name, o.keep_work_dirs) {}
  // Runs the command with the work directory as its last argument.
  void start(const SubprocessOptions& o, bool wait_for_manifest);
  // Waits for the process to exit or report itself done (see ChildProcess::wait).
  ProcessResult wait(double time_limit_s);
  // Waits for done.json only, leaving a serving process running; false when the
  // process exited or the time passed first (then wait() settles it).
  bool wait_for_done(double time_limit_s);
  // Hands this serving process the next batch, already written to `next`: writes
  // next.json here, and moves the process over to `next`.
  void hand_over(Launch& next);
};

// Whether the candidate that served this work directory can wait for its manifest,
// and whether it serves further batches after done.json.
bool can_wait_for_manifest(const std::filesystem::path& dir);
bool serves_batches(const std::filesystem::path& dir);

}  // namespace xposcheck::external
