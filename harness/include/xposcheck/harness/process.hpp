#pragma once
// Runs an external program in its own process group with its output captured to
// bounded buffers, a time limit, and the whole group killed when it runs over: a
// candidate that floods its output, forks helpers or hangs cannot block the harness,
// exhaust its memory or outlive the sweep. Helpers that leave the group (setsid)
// re-parent to the harness and are killed when the program ends
// (src/external/containment.hpp).
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace xposcheck {

// Keeps the last `capacity` bytes appended to it and counts every byte.
class TailBuffer {
 public:
  explicit TailBuffer(std::size_t capacity = 64 * 1024) : capacity_(capacity) {}
  void append(const char* data, std::size_t n);
  std::string text() const;                       // the kept bytes, oldest first
  std::size_t total_bytes() const { return total_; }
  bool truncated() const { return total_ > capacity_; }

 private:
  std::string buffer_;   // may hold up to 2x capacity before being trimmed
  std::size_t capacity_;
  std::size_t total_ = 0;
};

struct ProcessOptions {
  std::vector<std::string> argv;          // argv[0] is searched in PATH
  std::vector<std::string> extra_env;     // "NAME=value", added to the harness's environment
  std::filesystem::path working_dir;      // empty: the caller's
  std::optional<double> time_limit_s;     // none: wait for as long as it runs
  double kill_grace_s = 1.0;              // SIGTERM, then SIGKILL after this long
  std::size_t capture_bytes = 64 * 1024;  // kept of stdout and of stderr, each
};

struct ProcessResult {
  int pid = -1;
  bool started = false;
  std::string start_error;                // why it could not start
  bool timed_out = false;
  bool reported_done = false;             // said it was done; the rest of it was ended
  int exit_code = -1;                     // when it exited on its own
  int signal = 0;                         // when a signal ended it
  TailBuffer out, err;
  double wall_s = 0;                      // from wait() to the end of the program

  bool succeeded() const {
    return started && !timed_out && (reported_done || (signal == 0 && exit_code == 0));
  }
  // "exit status 3", "killed by signal 11 (Segmentation fault)", "timed out after 5 s"...
  std::string status() const;
};

// A started program (stdin from /dev/null) leading a new session and process group.
class ChildProcess {
 public:
  explicit ChildProcess(const ProcessOptions& options);  // starts it: see result().started
  ~ChildProcess();                                       // kills and reaps what is left
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // True once the program has exited (it stays unreaped until wait()).
  bool exited() const;
  // Drains stdout and stderr until the program exits, `done` returns true (checked
  // every few milliseconds, and at once whenever `wake_fd`, if >= 0, turns readable:
  // the program has reported its work complete, and its exit, an interpreter's
  // teardown, is not waited for), or time_limit_s (counted from now) passes; then the
  // group gets SIGTERM, and SIGKILL after the grace period. Either way whatever is
  // left of the group (helpers it started) is killed, so no process of the run
  // survives. Call once. wake_fd is emptied by reading it (an inotify descriptor).
  ProcessResult wait(std::optional<double> time_limit_s, const std::function<bool()>& done = {},
                     int wake_fd = -1);
  // Drains output like wait() until `done` returns true, then returns true and leaves
  // the program running (it goes on to further work); returns false when the program
  // exited or time_limit_s passed first, for wait() to settle.
  bool wait_for(std::optional<double> time_limit_s, const std::function<bool()>& done, int wake_fd = -1);
  const ProcessResult& result() const { return result_; }

 private:
  struct Pipes;
  ProcessOptions options_;
  ProcessResult result_;
  std::unique_ptr<Pipes> pipes_;
  bool reaped_ = false;
};

// Starts the program and waits for it with options.time_limit_s. Never throws for the
// program's failures: they are in the result.
ProcessResult run_process(const ProcessOptions& options);

// The last lines of a captured stream, at most max_bytes, for messages.
std::string tail_lines(const std::string& text, std::size_t max_bytes = 2000);

}  // namespace xposcheck
