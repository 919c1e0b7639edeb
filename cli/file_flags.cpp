#include "file_flags.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace xposcheck::cli {

namespace fs = std::filesystem;

namespace {

// Same file: by inode when both exist (links, "./a" versus "a"), else by path.
bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (fs::exists(a, ec) && fs::exists(b, ec)) return fs::equivalent(a, b, ec) && !ec;
  return fs::weakly_canonical(a, ec) == fs::weakly_canonical(b, ec);
}

}  // namespace

void check_files_distinct(const std::vector<FileFlag>& files) {
  for (std::size_t i = 0; i < files.size(); ++i) {
    const FileFlag& a = files[i];
    if (a.path.empty()) continue;
    std::error_code ec;
    if (a.output && fs::is_directory(a.path, ec))
      throw CLI::ValidationError(a.flag, fmt::format("{} is a directory; name a file", a.path));
    for (std::size_t j = i + 1; j < files.size(); ++j) {
      const FileFlag& b = files[j];
      if (b.path.empty() || !(a.output || b.output) || !same_file(a.path, b.path)) continue;
      throw CLI::ValidationError(b.flag, fmt::format("{} is the same file as {} ({}): writing it would destroy "
                                                     "the other; name another file", b.path, a.flag, a.path));
    }
  }
}

OutputLock::OutputLock(const std::string& file) {
  const std::string lock = file + ".lock";
  std::error_code ec;
  if (const fs::path parent = fs::path(file).parent_path(); !parent.empty()) fs::create_directories(parent, ec);
  fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw CLI::ValidationError("--out", fmt::format("cannot create {}: {}", lock, std::strerror(errno)));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    throw CLI::ValidationError("--out", err == EWOULDBLOCK
        ? fmt::format("another sweep is writing {} (it holds {}); wait for it or choose another --out", file, lock)
        : fmt::format("cannot lock {}: {}", lock, std::strerror(err)));
  }
}

// The lock file stays: removing it would let a third sweep lock a fresh inode while a
// second one waits on the old.
OutputLock::~OutputLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace xposcheck::cli
