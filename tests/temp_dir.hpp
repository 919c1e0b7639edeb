#pragma once
// A fresh directory under the system's temporary directory, removed with everything
// in it when the test is done; names carry the pid and a counter, so parallel test
// processes never share one.
#include <unistd.h>

#include <filesystem>
#include <string>

namespace xposcheck::testing {

struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& prefix = "xposcheck-test") {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           (prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::filesystem::path operator/(const std::string& name) const { return path / name; }
};

}  // namespace xposcheck::testing
