#pragma once
// Shared by the CLI tests: a scratch directory and a way to run the built
// executable, capturing stdout, stderr and the exit status.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "shell_run.hpp"
#include "temp_dir.hpp"

namespace xposcheck::testing {


// Runs `xposcheck <args>` with its output in files of `dir`.
inline Run run_cli(const TempDir& dir, const std::string& args) {
  std::string cmd = "'";
  cmd += XPOSCHECK_EXE;
  cmd += "' " + args;
  return run_shell(dir.path, cmd);
}

// A path quoted for the shell. Built with += because GCC 12 warns (-Wrestrict, a
// false positive) on "'" + string.
inline std::string q(const std::filesystem::path& p) {
  std::string s = "'";
  s += p.string();
  s += '\'';
  return s;
}

}  // namespace xposcheck::testing
