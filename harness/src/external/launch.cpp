#include "external/launch.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "xposcheck/reference/atomic_file.hpp"
#include "xposcheck/reference/regular_file.hpp"

namespace xposcheck::external {

void Launch::start(const SubprocessOptions& o, bool wait_for_manifest) {
  ProcessOptions po;
  po.argv = o.argv;
  po.argv.push_back(dir.path().string());
  po.kill_grace_s = o.kill_grace_s;
  po.capture_bytes = o.capture_bytes;
  po.extra_env = {std::string(kHarnessPidEnv) + "=" + std::to_string(::getpid())};
  if (wait_for_manifest) po.extra_env.push_back(std::string(kWaitForManifestEnv) + "=1");
  if (o.serve) po.extra_env.push_back(std::string(kServeEnv) + "=1");
  for (const EnvDefault& d : kCandidateEnvDefaults)
    if (!std::getenv(d.name)) po.extra_env.push_back(std::string(d.name) + "=" + d.value);
  process = std::make_unique<ChildProcess>(po);
}

namespace {

bool present(const std::filesystem::path& file) {
  std::error_code ec;
  return std::filesystem::exists(std::filesystem::symlink_status(file, ec));
}

bool finished(const CaseFiles& f) { return present(f.error) || (present(f.q_out) && present(f.k_out)); }

}  // namespace

CaseWatch::CaseWatch(std::vector<CaseFiles> cases, double case_timeout_s)
    : cases_(std::move(cases)), case_timeout_s_(case_timeout_s), since_(Clock::now()) {}

bool CaseWatch::overdue() {
  if (stuck_) return true;
  while (next_ < cases_.size() && finished(cases_[next_])) {
    const auto now = Clock::now();
    seconds_.push_back(std::chrono::duration<double>(now - since_).count());
    since_ = now;
    ++next_;
  }
  if (next_ < cases_.size() &&
      std::chrono::duration<double>(Clock::now() - since_).count() > case_timeout_s_)
    stuck_ = next_;
  return stuck_.has_value();
}

std::optional<double> CaseWatch::seconds(std::size_t i) const {
  if (i < seconds_.size()) return seconds_[i];
  return std::nullopt;
}

namespace {

// An inotify descriptor on a work directory, readable once a file is renamed into it
// or closed after writing: a wait then sees done.json (and each case's result) at once
// instead of at its next poll, which a serving process would spend idle, batch after
// batch. Where inotify is unavailable, fd() is -1 and waits poll as before.
class DirectoryWatch {
 public:
  explicit DirectoryWatch(const std::filesystem::path& dir) : fd_(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {
    if (fd_ >= 0 && ::inotify_add_watch(fd_, dir.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~DirectoryWatch() {
    if (fd_ >= 0) ::close(fd_);
  }
  DirectoryWatch(const DirectoryWatch&) = delete;
  DirectoryWatch& operator=(const DirectoryWatch&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

bool Launch::wait_for_done(double time_limit_s, CaseWatch& watch) {
  const std::filesystem::path done = dir.path() / kDoneFile;
  const DirectoryWatch changes(dir.path());
  const bool seen =
      process->wait_for(time_limit_s, [&] { return watch.overdue() || present(done); }, changes.fd());
  return seen && !watch.stuck();
}

void Launch::hand_over(Launch& next) {
  // Atomically: the candidate polls for it.
  write_atomically(dir.path() / kNextFile,
                   nlohmann::json{{"work_dir", next.dir.path().string()}}.dump() + "\n");
  next.process = std::move(process);
}

ProcessResult Launch::wait(double time_limit_s, CaseWatch& watch) {
  const std::filesystem::path done = dir.path() / kDoneFile;
  const DirectoryWatch changes(dir.path());
  ProcessResult r = process->wait(time_limit_s, [&] { return watch.overdue() || present(done); }, changes.fd());
  if (watch.stuck()) {
    r.reported_done = false;
    r.timed_out = true;
  }
  return r;
}

namespace {

// The candidate writes candidate.json: a FIFO, a link or a huge file there says no.
bool capability(const std::filesystem::path& dir, const char* name) {
  std::string text;
  try {
    text = read_bounded(dir / kCapabilitiesFile, 64 * 1024);
  } catch (const std::exception&) {
    return false;
  }
  const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_object() && j.contains(name) && j[name].is_boolean() && j[name].get<bool>();
}

}  // namespace

bool can_wait_for_manifest(const std::filesystem::path& dir) {
  return capability(dir, "wait_for_manifest");
}

bool serves_batches(const std::filesystem::path& dir) { return capability(dir, "serves_batches"); }

bool runs_whole_streams(const std::filesystem::path& dir) { return capability(dir, "streams"); }
bool computes_backward(const std::filesystem::path& dir) { return capability(dir, kBackwardCapability); }

}  // namespace xposcheck::external
