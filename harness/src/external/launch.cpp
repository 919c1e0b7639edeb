#include "external/launch.hpp"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace xposcheck::external {

void Launch::start(const SubprocessOptions& o, bool wait_for_manifest) {
  ProcessOptions po;
  po.argv = o.argv;
  po.argv.push_back(dir.path().string());
  po.kill_grace_s = o.kill_grace_s;
  po.capture_bytes = o.capture_bytes;
  if (wait_for_manifest) {
    po.extra_env = {std::string(kWaitForManifestEnv) + "=1",
                    std::string(kHarnessPidEnv) + "=" + std::to_string(::getpid())};
  }
  process = std::make_unique<ChildProcess>(po);
}

ProcessResult Launch::wait(double time_limit_s) {
  const std::filesystem::path done = dir.path() / kDoneFile;
  return process->wait(time_limit_s, [&done] {
    std::error_code ec;
    return std::filesystem::exists(done, ec);
  });
}

bool can_wait_for_manifest(const std::filesystem::path& dir) {
  std::ifstream in(dir / kCapabilitiesFile);
  if (!in) return false;
  std::stringstream text;
  text << in.rdbuf();
  const auto j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  return j.is_object() && j.contains("wait_for_manifest") && j["wait_for_manifest"].is_boolean() &&
         j["wait_for_manifest"].get<bool>();
}

}  // namespace xposcheck::external
