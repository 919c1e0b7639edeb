#include "external/work_dir.hpp"

#include <stdlib.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "external/containment.hpp"

namespace xposcheck::external {
namespace {

// Candidate names may hold anything; the directory name keeps only the safe part.
std::string safe_label(const std::string& label) {
  std::string out;
  for (char c : label) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
    out += ok ? c : '_';
    if (out.size() >= 40) break;
  }
  return out.empty() ? "candidate" : out;
}

// Two batches are in flight at once, each at most about 2^24 input values and as many
// outputs as .npy: this much free room keeps them clear of filling memory.
constexpr double kMemoryRootRoom = 4.0 * (1u << 30);

}  // namespace

std::filesystem::path default_work_root() {
  const char* tmpdir = std::getenv("TMPDIR");
  if (tmpdir && *tmpdir) return tmpdir;
  const char* shm = "/dev/shm";
  struct statvfs fs {};
  if (::access(shm, W_OK | X_OK) == 0 && ::statvfs(shm, &fs) == 0 &&
      static_cast<double>(fs.f_bavail) * static_cast<double>(fs.f_frsize) >= kMemoryRootRoom)
    return shm;
  return std::filesystem::temp_directory_path();
}

WorkDir::WorkDir(const std::filesystem::path& root, const std::string& label, bool keep)
    : keep_(keep) {
  const auto base = root.empty() ? default_work_root() : root;
  std::string pattern = (base / ("xposcheck-" + safe_label(label) + "-XXXXXX")).string();
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (::mkdtemp(buffer.data()) == nullptr) {
    throw std::runtime_error(
        fmt::format("cannot create a work directory in {}: {}", base.string(), std::strerror(errno)));
  }
  path_ = buffer.data();
  if (!keep_) register_work_dir(path_);
}

WorkDir::~WorkDir() {
  if (keep_) return;
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
  release_work_dir(path_);
}

}  // namespace xposcheck::external
