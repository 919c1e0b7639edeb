#include "external/containment.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace xposcheck::external {
namespace {

namespace fs = std::filesystem;

struct Registry {
  std::mutex mutex;
  std::set<int> groups;         // live candidate process groups (leader pids)
  std::set<std::string> dirs;   // work directories to remove on a signal
};

Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: the signal thread may use it at exit
  return *r;
}

int signal_pipe[2] = {-1, -1};

void on_signal(int sig) {
  const unsigned char byte = static_cast<unsigned char>(sig);
  const int saved = errno;
  [[maybe_unused]] const ssize_t n = ::write(signal_pipe[1], &byte, 1);
  errno = saved;
}

struct ProcStat {
  int pid = 0, ppid = 0, pgrp = 0;
};

// The parent and process group of a process, from /proc/<pid>/stat (the command
// name in parentheses may hold spaces, hence the search from the last ')').
bool read_stat(const fs::path& dir, ProcStat& s) {
  std::ifstream in(dir / "stat");
  std::string text;
  if (!std::getline(in, text)) return false;
  const auto paren = text.rfind(')');
  if (paren == std::string::npos || paren + 4 > text.size()) return false;
  char state = 0;
  return std::sscanf(text.c_str() + paren + 2, "%c %d %d", &state, &s.ppid, &s.pgrp) == 3;
}

std::vector<ProcStat> children_of_this_process() {
  std::vector<ProcStat> out;
  const int self = ::getpid();
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    ProcStat s;
    s.pid = std::stoi(name);
    if (read_stat(entry.path(), s) && s.ppid == self) out.push_back(s);
  }
  return out;
}

int reap_strays_locked(Registry& r) {
  const int own_group = ::getpgrp();
  int found = 0;
  // A stray may have children of its own, which re-parent here once it is killed.
  for (int round = 0; round < 64; ++round) {
    int this_round = 0;
    for (const ProcStat& s : children_of_this_process()) {
      if (s.pgrp == own_group || r.groups.count(s.pid) || r.groups.count(s.pgrp)) continue;
      // Its group too when it leads one (setsid, setpgid(0, 0)); a group it joined
      // may be someone else's.
      if (s.pgrp == s.pid) ::kill(-s.pgrp, SIGKILL);
      ::kill(s.pid, SIGKILL);
      while (::waitpid(s.pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      ++this_round;
    }
    found += this_round;
    if (this_round == 0) break;
  }
  return found;
}

[[noreturn]] void clean_up_and_exit(int sig) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  for (int group : r.groups) ::kill(-group, SIGKILL);
  for (int group : r.groups) ::waitpid(group, nullptr, 0);
  r.groups.clear();
  reap_strays_locked(r);
  for (const std::string& dir : r.dirs) {
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  }
  ::_exit(128 + sig);
}

void signal_thread() {
  for (;;) {
    unsigned char sig = 0;
    const ssize_t n = ::read(signal_pipe[0], &sig, 1);
    if (n == 1) clean_up_and_exit(sig);
    if (n < 0 && errno == EINTR) continue;
    return;
  }
}

void install() {
  ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  if (::pipe2(signal_pipe, O_CLOEXEC) != 0) return;
  std::thread(signal_thread).detach();
  struct sigaction action{};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
}

}  // namespace

void enable_containment() {
  static std::once_flag once;
  std::call_once(once, install);
}

int spawn_contained(const std::function<int()>& spawn) {
  enable_containment();
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  const int pid = spawn();
  if (pid > 0) r.groups.insert(pid);
  return pid;
}

void release_group(int pid) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  r.groups.erase(pid);
}

void register_work_dir(const fs::path& dir) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  r.dirs.insert(dir.string());
}

void release_work_dir(const fs::path& dir) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  r.dirs.erase(dir.string());
}

int reap_strays() {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  return reap_strays_locked(r);
}

}  // namespace xposcheck::external
