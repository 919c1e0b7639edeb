#include "xposcheck/reference/regular_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace xposcheck {
namespace {

const char* kind_of(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

}  // namespace

RegularFile::RegularFile(const std::filesystem::path& file) : path_(file) {
  // O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting.
  fd_ = ::open(file.c_str(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
  if (fd_ < 0) {
    const int e = errno;
    if (e == ELOOP) throw FileKindError(file.string() + ": not a regular file (a symbolic link)");
    throw FileKindError(fmt::format("{}: cannot open: {}", file.string(), std::strerror(e)));
  }
  struct stat st{};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    const mode_t mode = st.st_mode;
    ::close(fd_);
    fd_ = -1;
    throw FileKindError(fmt::format("{}: not a regular file ({})", file.string(), kind_of(mode)));
  }
  size_ = static_cast<std::uint64_t>(st.st_size);
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
}

RegularFile::~RegularFile() {
  if (fd_ >= 0) ::close(fd_);
}

std::size_t RegularFile::read(char* dst, std::size_t n) {
  std::size_t done = 0;
  while (done < n) {
    const ssize_t got = ::read(fd_, dst + done, n - done);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw FileKindError(fmt::format("{}: read failed: {}", path_.string(), std::strerror(errno)));
    if (got == 0) break;
    done += static_cast<std::size_t>(got);
  }
  position_ += done;
  return done;
}

std::size_t RegularFile::read_at(std::uint64_t offset, char* dst, std::size_t n) const {
  std::size_t done = 0;
  while (done < n) {
    const ssize_t got = ::pread(fd_, dst + done, n - done, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw FileKindError(fmt::format("{}: read failed: {}", path_.string(), std::strerror(errno)));
    if (got == 0) break;
    done += static_cast<std::size_t>(got);
  }
  return done;
}

std::string read_bounded(const std::filesystem::path& file, std::size_t max_bytes) {
  RegularFile f(file);
  if (f.size() > max_bytes) {
    throw FileKindError(fmt::format("{}: {} bytes, more than the {} bytes allowed for this file",
                                    file.string(), f.size(), max_bytes));
  }
  // One byte more than allowed tells a file that grew since it was opened.
  std::string text(static_cast<std::size_t>(f.size()) + 1, '\0');
  std::size_t n = f.read(text.data(), text.size());
  if (n > max_bytes) {
    throw FileKindError(fmt::format("{}: more than the {} bytes allowed for this file",
                                    file.string(), max_bytes));
  }
  text.resize(n);
  return text;
}

bool is_regular_file_nofollow(const std::filesystem::path& file) {
  struct stat st{};
  return ::lstat(file.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace xposcheck
