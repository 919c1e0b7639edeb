#include "xposcheck/reference/atomic_file.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>

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

}  // namespace xposcheck
