#pragma once
// Writing a file so that a reader (a candidate polling for its manifest, a user's
// tool, a resumed sweep) sees either the old file or the whole new one.
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

}  // namespace xposcheck
