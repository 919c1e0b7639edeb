#pragma once
// Files named on the command line: an output must be none of the command's inputs nor
// another of its outputs (`report r.json -o r.json` once destroyed the results and
// exited 0), must not be a directory, and --out of a sweep is locked for the run.
#include <string>
#include <vector>

namespace xposcheck::cli {

struct FileFlag {
  std::string flag;  // "--out", "results" (a positional), ...
  std::string path;  // empty: not given
  bool output = false;
};

// Throws CLI::ValidationError naming both flags when an output is the same file as
// another input or output, or an output is a directory.
void check_files_distinct(const std::vector<FileFlag>& files);

// An exclusive flock on "<file>.lock", held while the object lives: two sweeps on one
// --out would otherwise each rewrite it and lose the other's records.
class OutputLock {
 public:
  explicit OutputLock(const std::string& file);
  ~OutputLock();
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace xposcheck::cli
