#include "external/launch.hpp"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "xposcheck/reference/atomic_file.hpp"

namespace xposcheck::external {

void Launch::start(const SubprocessOptions& o, bool wait_for_manifest) {
  ProcessOptions po;
  po.argv = o.argv;
  po.argv.push_back(dir.path().string());
  po.kill_grace_s = o.kill_grace_s;
  po.capture_bytes = o.capture_bytes;
  po.extra_env = {std::string(kHarnessPidEnv) + "=" + std::to_string(::getpid())};
  if (wait_for_manifest) po.extra_env.push_back(std::string(kWaitForManifestEnv) + "=1");
  if (o.serve) po.extra_env.push_back(std::string(kServeEnv) + "=1");
  process = std::make_unique<ChildProcess>(po);
}

bool Launch::wait_for_done(double time_limit_s) {
  const std::filesystem::path done = dir.path() / kDoneFile;
  return process->wait_for(time_limit_s, [&done] {
    std::error_code ec;
    return std::filesystem::exists(done, ec);
  });
}

void Launch::hand_over(Launch& next) {
  // Atomically: the candidate polls for it.
  write_atomically(dir.path() / kNextFile,
                   nlohmann::json{{"work_dir", next.dir.path().string()}}.dump() + "\n");
  next.process = std::move(process);
}

ProcessResult Launch::wait(double time_limit_s) {
  const std::filesystem::path done = dir.path() / kDoneFile;
  return process->wait(time_limit_s, [&done] {
    std::error_code ec;
    return std::filesystem::exists(done, ec);
  });
}

namespace {

bool capability(const std::filesystem::path& dir, const char* name) {
  std::ifstream in(dir / kCapabilitiesFile);
  if (!in) return false;
  std::stringstream text;
  text << in.rdbuf();
  const auto j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  return j.is_object() && j.contains(name) && j[name].is_boolean() && j[name].get<bool>();
}

}  // namespace

bool can_wait_for_manifest(const std::filesystem::path& dir) {
  return capability(dir, "wait_for_manifest");
}

bool serves_batches(const std::filesystem::path& dir) { return capability(dir, "serves_batches"); }

}  // namespace xposcheck::external
