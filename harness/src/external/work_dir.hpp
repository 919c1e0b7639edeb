#pragma once
// A fresh temporary directory for one batch, removed when done (unless kept).
#include <filesystem>
#include <string>

namespace xposcheck::external {

class WorkDir {
 public:
  // Creates <root>/xposcheck-<label>-XXXXXX; an empty root means the system's
  // temporary directory. Throws std::runtime_error naming the directory.
  WorkDir(const std::filesystem::path& root, const std::string& label, bool keep);
  ~WorkDir();
  WorkDir(const WorkDir&) = delete;
  WorkDir& operator=(const WorkDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  bool keep_;
};

}  // namespace xposcheck::external
