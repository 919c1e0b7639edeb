#pragma once
// Writing a file so that a reader (a candidate polling for its manifest, a user's
// tool, a resumed sweep) sees either the old file or the whole new one.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <ostream>
#include <stdexcept>
#include <string_view>

namespace xposcheck {

// A file that could not be written; the message names the file.
struct FileWriteError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Writes `file` through writer: into a temporary beside it (".NAME.tmp-PID-N", so
// names polled for never match it), then renamed over `file`. No fsync: the files
// must survive the process, not the machine, and a sweep writes thousands of them.
// A target that exists and is not a regular file (/dev/null, a FIFO, a device) is
// written directly: renaming would replace the device with a regular file. On failure
// the temporary is removed and FileWriteError names `file`. An exception from writer
// propagates as it is, after the same clean-up.
void write_atomically(const std::filesystem::path& file,
                      const std::function<void(std::ostream&)>& writer);
void write_atomically(const std::filesystem::path& file, std::string_view text);

// A file written in pieces, at any offsets, that appears at once on commit(): the same
// temporary and rename as write_atomically (a special target is written in place, and
// must then be seekable). Destroyed without commit(), the temporary is removed. Errors
// are FileWriteError naming `file`.
class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path file);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write_at(std::uint64_t offset, const void* data, std::size_t bytes);
  void commit();
  const std::filesystem::path& path() const { return file_; }

 private:
  std::filesystem::path file_, target_;
  int fd_ = -1;
};

}  // namespace xposcheck
