#include "xposcheck/harness/plugin_candidate.hpp"

#include <unistd.h>

#include <cstdlib>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "external/protocol.hpp"
#include "xposcheck/harness/candidate_text.hpp"
#include "xposcheck/harness/process.hpp"

#ifndef XPOSCHECK_PLUGIN_RUNNER_BUILD_PATH
#define XPOSCHECK_PLUGIN_RUNNER_BUILD_PATH ""
#endif
#ifndef XPOSCHECK_PLUGIN_RUNNER_INSTALL_PATH
#define XPOSCHECK_PLUGIN_RUNNER_INSTALL_PATH ""
#endif

namespace xposcheck {
namespace {

namespace fs = std::filesystem;

constexpr const char* kRunnerName = "xposcheck-plugin-runner";

bool is_executable(const fs::path& p) {
  return !p.empty() && ::access(p.c_str(), X_OK) == 0 && !fs::is_directory(p);
}

fs::path beside_this_executable() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : self.parent_path() / kRunnerName;
}

}  // namespace

fs::path find_plugin_runner() {
  if (const char* env = std::getenv("XPOSCHECK_PLUGIN_RUNNER"); env && *env) {
    if (!is_executable(env))
      throw PluginError(fmt::format("XPOSCHECK_PLUGIN_RUNNER={} is not an executable", env));
    return env;
  }
  for (const fs::path& p : {beside_this_executable(), fs::path(XPOSCHECK_PLUGIN_RUNNER_BUILD_PATH),
                            fs::path(XPOSCHECK_PLUGIN_RUNNER_INSTALL_PATH)}) {
    if (is_executable(p)) return p;
  }
  throw PluginError(fmt::format("cannot find {} (set XPOSCHECK_PLUGIN_RUNNER to its path)",
                                kRunnerName));
}

PluginInfo describe_plugin(const fs::path& library, const fs::path& runner, double time_limit_s) {
  ProcessOptions o;
  o.argv = {runner.string(), "--describe", fs::absolute(library).string()};
  o.time_limit_s = time_limit_s;
  o.kill_grace_s = 0.2;
  const ProcessResult r = run_process(o);
  if (!r.succeeded()) {
    const std::string why = candidate_text(tail_lines(r.err.text(), 1000));
    throw PluginError(fmt::format("{}: unusable native candidate ({}){}", library.string(),
                                  r.status(), why.empty() ? "" : ": " + why));
  }
  try {
    const auto j = nlohmann::json::parse(r.out.text());
    return {j.at("abi_version").get<unsigned>(), j.at("name").get<std::string>(),
            candidate_text(j.at("description").get<std::string>()),
            j.value(external::kBackwardCapability, false)};
  } catch (const nlohmann::json::exception& e) {
    throw PluginError(fmt::format("{}: the plugin runner's description is not valid ({})",
                                  library.string(), candidate_text(e.what())));
  }
}

std::unique_ptr<SubprocessCandidate> make_plugin_candidate(const fs::path& library,
                                                           SubprocessOptions options) {
  const fs::path runner = find_plugin_runner();
  const fs::path absolute = fs::absolute(library);
  const PluginInfo info = describe_plugin(absolute, runner, options.case_timeout_s);
  if (options.name.empty()) {
    options.name = info.name.empty() ? absolute.stem().string() : info.name;
    try {
      check_candidate_name(options.name, "the name its xposcheck_describe returned");
    } catch (const std::invalid_argument& e) {
      throw PluginError(fmt::format("{}: unusable native candidate: {}", absolute.string(), e.what()));
    }
  }
  // The version shows in reports why a version 1 plugin's explicit-position cases fail.
  options.description = fmt::format("{} (native plugin {}, ABI version {})", info.description,
                                    absolute.string(), info.abi_version);
  options.backward = info.backward;
  options.argv = {runner.string(), absolute.string()};
  return std::make_unique<SubprocessCandidate>(std::move(options));
}

}  // namespace xposcheck
