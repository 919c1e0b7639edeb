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

#include "temp_dir.hpp"

namespace xposcheck::testing {


inline std::string slurp(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Run {
  int status = -1;
  std::string out, err;
};

// Runs `xposcheck <args>` with its output in files of `dir`.
inline Run run_cli(const TempDir& dir, const std::string& args) {
  const std::filesystem::path out = dir / "stdout.txt", err = dir / "stderr.txt";
  std::string cmd = "'";
  cmd += XPOSCHECK_EXE;
  cmd += "' " + args + " >'" + out.string() + "' 2>'" + err.string() + "'";
  const int raw = std::system(cmd.c_str());
  return {WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, slurp(out), slurp(err)};
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
