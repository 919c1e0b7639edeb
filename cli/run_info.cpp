#include "run_info.hpp"

#include <array>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <fmt/format.h>
#include <thread>
#include <unistd.h>

#include "xposcheck/harness/tolerance.hpp"
#include "xposcheck/version.hpp"

namespace xposcheck::cli {
namespace {

std::string git_commit() {
  const std::string command = fmt::format("git -C '{}' rev-parse --short=12 HEAD 2>/dev/null", kSourceDir);
  std::FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return {};
  std::array<char, 64> buffer{};
  std::string out;
  if (std::fgets(buffer.data(), buffer.size(), pipe)) out = buffer.data();
  ::pclose(pipe);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::array<char, 32> buffer{};
  std::strftime(buffer.data(), buffer.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer.data();
}

std::string machine() {
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
  return fmt::format("{} ({} cores)", host.data(), std::thread::hardware_concurrency());
}

// FNV-1a over a file's bytes; none when it cannot be read.
std::optional<std::uint64_t> file_digest(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::uint64_t h = fnv1a64("");
  std::array<char, 1 << 16> buffer{};
  while (in.read(buffer.data(), buffer.size()) || in.gcount() > 0)
    h = fnv1a64(std::string_view(buffer.data(), static_cast<std::size_t>(in.gcount())), h);
  return h;
}

}  // namespace

std::string candidate_code(const std::string& command_or_library) {
  std::string out = command_or_library;
  std::istringstream words(command_or_library);
  std::string word;
  while (words >> word) {
    if (word.size() >= 2 && (word.front() == '\'' || word.front() == '"') && word.back() == word.front())
      word = word.substr(1, word.size() - 2);
    std::error_code ec;
    if (!std::filesystem::is_regular_file(word, ec)) continue;
    if (const auto digest = file_digest(word)) out += fmt::format("; {} {:016x}", word, *digest);
  }
  return out;
}

RunInfo make_run_info(const Grid& grid, const std::vector<std::string>& candidates,
                      const std::vector<DType>& dtypes, const ToleranceOverrides& overrides) {
  RunInfo run;
  run.tool_version = kVersion;
  run.git_commit = git_commit();
  run.grid_name = grid.name;
  run.grid_source = grid.source;
  run.grid_fingerprint = grid.fingerprint;
  run.candidates = candidates;
  for (DType t : dtypes) {
    run.dtypes.emplace_back(dtype_name(t));
    ToleranceSpec spec = default_tolerance_spec(t);
    spec.merge(grid.tolerance.for_dtype(t));
    spec.merge(overrides.for_dtype(t));
    run.tolerance[std::string(dtype_name(t))] = spec;
  }
  run.machine = machine();
  run.started_at = utc_now();
  return run;
}

}  // namespace xposcheck::cli
