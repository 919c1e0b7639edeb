#include "xposcheck/harness/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include <fmt/format.h>

#include "external/containment.hpp"

extern char** environ;

namespace xposcheck {

void TailBuffer::append(const char* data, std::size_t n) {
  total_ += n;
  if (n >= capacity_) {
    buffer_.assign(data + (n - capacity_), capacity_);
    return;
  }
  buffer_.append(data, n);
  // Trim in bulk so that appending stays amortised O(1).
  if (buffer_.size() > 2 * capacity_) buffer_.erase(0, buffer_.size() - capacity_);
}

std::string TailBuffer::text() const {
  return buffer_.size() > capacity_ ? buffer_.substr(buffer_.size() - capacity_) : buffer_;
}

std::string ProcessResult::status() const {
  if (!started) return "could not start: " + start_error;
  if (timed_out) return fmt::format("timed out after {:.3g} s; process group killed", wall_s);
  if (reported_done) return "reported done; process group ended";
  if (signal != 0) {
    const char* name = ::strsignal(signal);
    return fmt::format("killed by signal {} ({})", signal, name ? name : "unknown");
  }
  return fmt::format("exit status {}", exit_code);
}

std::string tail_lines(const std::string& text, std::size_t max_bytes) {
  std::string t = text;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  if (t.size() <= max_bytes) return t;
  std::size_t start = t.size() - max_bytes;
  const std::size_t newline = t.find('\n', start);
  if (newline != std::string::npos && newline + 1 < t.size()) start = newline + 1;
  return "..." + t.substr(start);
}

namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

struct Pipe {
  int read = -1, write = -1;
  ~Pipe() {
    if (read >= 0) ::close(read);
    if (write >= 0) ::close(write);
  }
  bool open() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return false;
    read = fds[0];
    write = fds[1];
    ::fcntl(read, F_SETFL, ::fcntl(read, F_GETFL) | O_NONBLOCK);
    return true;
  }
  void close_write() {
    if (write >= 0) ::close(write);
    write = -1;
  }
};

// posix_spawn with the child leading a new session (and so a new process group, killed
// as one), stdin from /dev/null, default signal handling and an empty signal mask
// (whatever the harness itself uses). A session of its own also puts the candidate in
// a scheduling group of its own where the kernel groups by session (autogroup, on by
// default in Debian): the harness's verification threads then share the CPU with the
// candidate group against group, not thread against thread, and stop preempting it
// (on 2 cores, the PyTorch candidate waited 1.1-1.3 s per default sweep, 0.55-0.6 s
// in a session of its own).
struct SpawnSetup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  SpawnSetup(const ProcessOptions& o, const Pipe& out, const Pipe& err) {
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out.write, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, err.write, STDERR_FILENO);
    if (!o.working_dir.empty())
      posix_spawn_file_actions_addchdir_np(&actions, o.working_dir.c_str());
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
};

// Reads what each open pipe holds now, up to 1 MiB each (a program writing faster
// than that must not keep the caller from its deadline); closes a pipe at end of file.
void drain(Pipe& out, Pipe& err, TailBuffer& out_tail, TailBuffer& err_tail) {
  char buffer[65536];
  for (auto [pipe, tail] : {std::pair{&out, &out_tail}, std::pair{&err, &err_tail}}) {
    for (int reads = 0; pipe->read >= 0 && reads < 16; ++reads) {
      const ssize_t n = ::read(pipe->read, buffer, sizeof buffer);
      if (n > 0) {
        tail->append(buffer, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n == 0 || errno != EAGAIN) {
        ::close(pipe->read);
        pipe->read = -1;
      }
      break;
    }
  }
}

// Waits up to `ms` for output or for `wake_fd` (when >= 0) to turn readable, then
// takes the output and empties wake_fd.
void wait_for_output(Pipe& out, Pipe& err, ProcessResult& r, int ms, int wake_fd) {
  pollfd fds[3];
  nfds_t n = 0;
  for (const Pipe* p : {&out, &err}) {
    if (p->read >= 0) fds[n++] = pollfd{p->read, POLLIN, 0};
  }
  if (wake_fd >= 0) fds[n++] = pollfd{wake_fd, POLLIN, 0};
  if (n == 0) {
    ::usleep(static_cast<useconds_t>(ms) * 1000);
    return;
  }
  ::poll(fds, n, ms);
  drain(out, err, r.out, r.err);
  // One read empties it unless more is queued than fits; then the next poll wakes at
  // once and reads on (a descriptor that blocks is never read while empty).
  char events[4096];
  if (wake_fd >= 0 && (fds[n - 1].revents & POLLIN)) {
    [[maybe_unused]] const ssize_t taken = ::read(wake_fd, events, sizeof events);
  }
}

// True once the child has exited; leaves it unreaped so that its process group
// stays valid for the final kill.
bool has_exited(int pid) {
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0)
    return errno == ECHILD;
  return info.si_pid == pid;
}

// Waits (draining output) until the child exits, reports itself done, or the deadline
// passes.
bool wait_until(int pid, Clock::time_point deadline, Pipe& out, Pipe& err, ProcessResult& r,
                const std::function<bool()>& done = {}, int wake_fd = -1) {
  for (;;) {
    if (has_exited(pid)) return true;
    if (done && done()) {
      r.reported_done = true;
      return true;
    }
    const auto now = Clock::now();
    if (now >= deadline) return false;
    const double left_ms = std::chrono::duration<double, std::milli>(deadline - now).count();
    wait_for_output(out, err, r, static_cast<int>(std::clamp(left_ms, 1.0, 20.0)), wake_fd);
  }
}

void reap(int pid, ProcessResult& r) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
}

// The harness's environment plus the extra entries (which take precedence).
std::vector<std::string> environment_with(const std::vector<std::string>& extra) {
  std::vector<std::string> env(extra);
  for (char** e = environ; *e; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    const bool overridden = std::any_of(extra.begin(), extra.end(), [&](const std::string& x) {
      return x.compare(0, name.size() + 1, name + "=") == 0;
    });
    if (!overridden) env.push_back(entry);
  }
  return env;
}

// The group is gone; what its processes started outside it (new sessions, double
// forks) has re-parented to this process, the subreaper, and goes too.
void settle(int pid) {
  external::release_group(pid);
  external::reap_strays();
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> p;
  for (std::string& s : strings) p.push_back(s.data());
  p.push_back(nullptr);
  return p;
}

}  // namespace

struct ChildProcess::Pipes {
  Pipe out, err;
};

ChildProcess::ChildProcess(const ProcessOptions& o) : options_(o), pipes_(std::make_unique<Pipes>()) {
  result_.out = TailBuffer(o.capture_bytes);
  result_.err = TailBuffer(o.capture_bytes);
  if (o.argv.empty() || !pipes_->out.open() || !pipes_->err.open()) {
    result_.start_error = o.argv.empty() ? "empty command" : std::strerror(errno);
    return;
  }
  std::vector<std::string> args = o.argv, env = environment_with(o.extra_env);
  std::vector<char*> argv = pointers(args), envp = pointers(env);
  pid_t pid = -1;
  SpawnSetup setup(o, pipes_->out, pipes_->err);
  int rc = 0;
  external::spawn_contained([&] {
    rc = ::posix_spawnp(&pid, argv[0], &setup.actions, &setup.attr, argv.data(), envp.data());
    return rc == 0 ? pid : -1;
  });
  if (rc != 0) {
    result_.start_error = fmt::format("{}: {}", o.argv[0], std::strerror(rc));
    return;
  }
  result_.pid = pid;
  result_.started = true;
  pipes_->out.close_write();
  pipes_->err.close_write();
}

ChildProcess::~ChildProcess() {
  if (!result_.started || reaped_) return;
  ::kill(-result_.pid, SIGKILL);
  reap(result_.pid, result_);
  settle(result_.pid);
}

bool ChildProcess::exited() const {
  return !result_.started || reaped_ || has_exited(result_.pid);
}

ProcessResult ChildProcess::wait(std::optional<double> time_limit_s, const std::function<bool()>& done,
                                 int wake_fd) {
  if (!result_.started || reaped_) return result_;
  const auto waited_from = Clock::now();
  const int pid = result_.pid;
  Pipe& out = pipes_->out;
  Pipe& err = pipes_->err;
  const auto deadline = time_limit_s ? Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                          std::chrono::duration<double>(*time_limit_s))
                                     : Clock::time_point::max();
  if (!wait_until(pid, deadline, out, err, result_, done, wake_fd)) {
    result_.timed_out = true;
    ::kill(-pid, SIGTERM);
    const auto grace = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(options_.kill_grace_s));
    if (!wait_until(pid, Clock::now() + grace, out, err, result_)) ::kill(-pid, SIGKILL);
  }
  // Helpers the program left behind would hold the pipes open and outlive the sweep.
  ::kill(-pid, SIGKILL);
  reap(pid, result_);
  settle(pid);
  reaped_ = true;
  result_.wall_s = seconds_between(waited_from, Clock::now());
  const auto drain_until = Clock::now() + std::chrono::milliseconds(200);
  while ((out.read >= 0 || err.read >= 0) && Clock::now() < drain_until)
    wait_for_output(out, err, result_, 10, -1);
  return result_;
}

bool ChildProcess::wait_for(std::optional<double> time_limit_s, const std::function<bool()>& done,
                            int wake_fd) {
  if (!result_.started || reaped_) return false;
  const auto deadline = time_limit_s ? Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                          std::chrono::duration<double>(*time_limit_s))
                                     : Clock::time_point::max();
  const bool seen = wait_until(result_.pid, deadline, pipes_->out, pipes_->err, result_, done, wake_fd) &&
                    result_.reported_done;
  result_.reported_done = false;
  return seen;
}

ProcessResult run_process(const ProcessOptions& o) {
  ChildProcess child(o);
  return child.wait(o.time_limit_s);
}

}  // namespace xposcheck
