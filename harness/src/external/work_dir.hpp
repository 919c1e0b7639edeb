#pragma once
// A fresh temporary directory for one batch, removed when done (unless kept).
#include <filesystem>
#include <string>

namespace xposcheck::external {

// Where batches go when no root is given: $TMPDIR when it is set; else /dev/shm when it
// is a writable memory file system with room (a batch's .npy files then never wait for
// a disk); else the system's temporary directory.
std::filesystem::path default_work_root();

class WorkDir {
 public:
  // Creates <root>/xposcheck-<label>-XXXXXX; an empty root means default_work_root().
  // Throws std::runtime_error naming the directory.
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
