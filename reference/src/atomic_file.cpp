#include "xposcheck/reference/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace xposcheck {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const fs::path& file, const std::string& problem) {
  throw FileWriteError(fmt::format("{}: {}", file.string(), problem));
}

fs::path temporary_beside(const fs::path& file) {
  static std::atomic<unsigned> counter{0};
  return file.parent_path() /
         fmt::format(".{}.tmp-{}-{}", file.filename().string(), ::getpid(), counter++);
}

// Whether `file` exists as something other than a regular file (a link is followed).
bool is_special(const fs::path& file) {
  std::error_code ec;
  const fs::file_status s = fs::status(file, ec);
  return !ec && fs::exists(s) && !fs::is_regular_file(s) && !fs::is_directory(s);
}

void write_to(const fs::path& file, const fs::path& target,
              const std::function<void(std::ostream&)>& writer) {
  std::ofstream out(target, std::ios::binary | std::ios::trunc);
  if (!out) {
    fail(file, target == file ? fmt::format("cannot open for writing: {}", std::strerror(errno))
                              : fmt::format("cannot create temporary file {}: {}",
                                            target.string(), std::strerror(errno)));
  }
  writer(out);
  out.close();
  if (!out) fail(file, "write failed (disk full?)");
}

}  // namespace

void write_atomically(const fs::path& file, const std::function<void(std::ostream&)>& writer) {
  if (is_special(file)) return write_to(file, file, writer);
  const fs::path tmp = temporary_beside(file);
  try {
    write_to(file, tmp, writer);
    std::error_code ec;
    fs::rename(tmp, file, ec);
    if (ec) fail(file, fmt::format("cannot move {} into place: {}", tmp.string(), ec.message()));
  } catch (...) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw;
  }
}

void write_atomically(const fs::path& file, std::string_view text) {
  write_atomically(file, [text](std::ostream& out) {
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  });
}

AtomicFile::AtomicFile(fs::path file) : file_(std::move(file)) {
  target_ = is_special(file_) ? file_ : temporary_beside(file_);
  fd_ = ::open(target_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd_ < 0) {
    fail(file_, target_ == file_ ? fmt::format("cannot open for writing: {}", std::strerror(errno))
                                 : fmt::format("cannot create temporary file {}: {}",
                                               target_.string(), std::strerror(errno)));
  }
}

AtomicFile::~AtomicFile() {
  if (fd_ < 0) return;
  ::close(fd_);
  std::error_code ignored;
  if (target_ != file_) fs::remove(target_, ignored);
}

void AtomicFile::write_at(std::uint64_t offset, const void* data, std::size_t bytes) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::pwrite(fd_, p, bytes, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail(file_, fmt::format("write failed: {}", n < 0 ? std::strerror(errno) : "no progress"));
    p += n;
    offset += static_cast<std::uint64_t>(n);
    bytes -= static_cast<std::size_t>(n);
  }
}

void AtomicFile::commit() {
  if (fd_ < 0) fail(file_, "committed twice");
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    const std::string why = std::strerror(errno);
    std::error_code ignored;
    if (target_ != file_) fs::remove(target_, ignored);
    fail(file_, "write failed (disk full?): " + why);
  }
  if (target_ == file_) return;
  std::error_code ec;
  fs::rename(target_, file_, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(target_, ignored);
    fail(file_, fmt::format("cannot move {} into place: {}", target_.string(), ec.message()));
  }
}

}  // namespace xposcheck
