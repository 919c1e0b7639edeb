#pragma once
// Reading files that another program (a candidate) chose the contents and the kind
// of: opening a FIFO for reading blocks until someone writes to it, a symbolic link
// may point at /dev/zero, and a file may claim any size. RegularFile opens without
// blocking or following links and refuses anything but a regular file; reads are
// bounded by what the caller asks for.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace xposcheck {

// Not readable, or not a regular file; the message names the file.
struct FileKindError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class RegularFile {
 public:
  // Throws FileKindError "FILE: not a regular file (a FIFO)", "FILE: cannot open: ...".
  explicit RegularFile(const std::filesystem::path& file);
  ~RegularFile();
  RegularFile(const RegularFile&) = delete;
  RegularFile& operator=(const RegularFile&) = delete;

  std::uint64_t size() const { return size_; }  // when opened
  // Reads up to n bytes; fewer only at the end of the file.
  std::size_t read(char* dst, std::size_t n);
  std::uint64_t position() const { return position_; }  // bytes read so far
  // Up to n bytes from `offset`, leaving the position alone; fewer only at the end of
  // the file (pread: a file cut short under the reader is a short read, not a signal).
  std::size_t read_at(std::uint64_t offset, char* dst, std::size_t n) const;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::uint64_t position_ = 0;
};

// The whole file, which must be a regular file of at most max_bytes; throws
// FileKindError naming the file and the limit otherwise.
std::string read_bounded(const std::filesystem::path& file, std::size_t max_bytes);

// True when the path names a regular file (not following a final symbolic link).
bool is_regular_file_nofollow(const std::filesystem::path& file);

}  // namespace xposcheck
