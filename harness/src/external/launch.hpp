#pragma once
// A batch's work directory together with the candidate process serving it. A process
// may be started before its batch is known ("prestarted"), when the candidate said it
// can wait for its manifest: its start-up (an interpreter importing PyTorch takes
// seconds) then overlaps the harness's own work on the batch. A process that serves
// batches moves on to the next batch's directory (hand_over) instead of exiting.
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <vector>

#include "external/protocol.hpp"
#include "external/work_dir.hpp"
#include "xposcheck/harness/process.hpp"
#include "xposcheck/harness/subprocess_candidate.hpp"

namespace xposcheck::external {

// Follows a process through the cases of its batch, which it finishes in manifest
// order: a case is finished when its outputs or its error record exist. Each case has
// its own allowance, counted from when the previous case finished (the first case's
// from when the watch starts: the batch handed to the process), so that a hang costs
// one case's allowance, never the whole batch's, and a slow case never makes the next
// one take the blame.
class CaseWatch {
 public:
  CaseWatch(std::vector<CaseFiles> cases, double case_timeout_s);
  // Notes the cases finished since the last call; true once the current case has run
  // past its allowance (it stays true).
  bool overdue();
  // The case (an index into `cases`) that ran past its allowance, if one did.
  std::optional<std::size_t> stuck() const { return stuck_; }
  // A finished case's time, from the previous case's end to its own.
  std::optional<double> seconds(std::size_t i) const;
  double case_timeout_s() const { return case_timeout_s_; }

 private:
  using Clock = std::chrono::steady_clock;
  std::vector<CaseFiles> cases_;
  double case_timeout_s_;
  std::size_t next_ = 0;            // the first case not seen finished
  Clock::time_point since_;         // when the case `next_` began
  std::vector<double> seconds_;     // of the finished cases
  std::optional<std::size_t> stuck_;
};

struct Launch {
  WorkDir dir;
  std::unique_ptr<ChildProcess> process;  // null until started

  explicit Launch(const SubprocessOptions& o) : dir(o.temp_root, o.name, o.keep_work_dirs) {}
  // Runs the command with the work directory as its last argument.
  void start(const SubprocessOptions& o, bool wait_for_manifest);
  // Waits for the process to exit or report itself done (see ChildProcess::wait);
  // a case that runs past its allowance ends it at once, as timed out.
  ProcessResult wait(double time_limit_s, CaseWatch& watch);
  // Waits for done.json only, leaving a serving process running; false when the
  // process exited, a case ran past its allowance or the time passed first (then
  // wait() settles it).
  bool wait_for_done(double time_limit_s, CaseWatch& watch);
  // Hands this serving process the next batch, already written to `next`: writes
  // next.json here, and moves the process over to `next`.
  void hand_over(Launch& next);
};

// Whether the candidate that served this work directory can wait for its manifest,
// and whether it serves further batches after done.json.
bool can_wait_for_manifest(const std::filesystem::path& dir);
bool serves_batches(const std::filesystem::path& dir);
// Whether it said it takes a stream as one case and makes the calls itself.
bool runs_whole_streams(const std::filesystem::path& dir);
// Whether it said it computes the backward pass (docs/protocol.md).
bool computes_backward(const std::filesystem::path& dir);

}  // namespace xposcheck::external
