#pragma once
// Native candidates: a shared library implementing include/xposcheck/candidate.h.
// The library is never loaded into the harness: each batch runs in the
// xposcheck-plugin-runner executable, which speaks the work-directory protocol of
// subprocess candidates and forks once per case, so a segfault or abort in the
// library is a CRASH for that case and a hang a TIMEOUT, never the end of the sweep.
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#include "xposcheck/harness/subprocess_candidate.hpp"

namespace xposcheck {

// A library that cannot be used: not loadable, symbols missing, another ABI version.
struct PluginError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct PluginInfo {
  unsigned abi_version = 0;
  std::string name;
  std::string description;
  bool backward = false;  // exports xposcheck_run_backward
};

// The runner executable: $XPOSCHECK_PLUGIN_RUNNER, else beside the running
// executable, else the build tree's, else the installed one. Throws PluginError
// when none exists.
std::filesystem::path find_plugin_runner();

// Loads the library in the runner (never in this process) and asks for its name;
// a runner that has not answered within time_limit_s is killed (PluginError).
PluginInfo describe_plugin(const std::filesystem::path& library,
                           const std::filesystem::path& runner = find_plugin_runner(),
                           double time_limit_s = 60);

// A candidate running the library through the runner. `options` supplies batch size,
// timeouts and so on; its name, when empty, becomes the library's own.
std::unique_ptr<SubprocessCandidate> make_plugin_candidate(const std::filesystem::path& library,
                                                           SubprocessOptions options = {});

}  // namespace xposcheck
