#pragma once
// Running a shell command line the way a user would, with its stdout and stderr in
// files of a scratch directory, and reading files back whole.
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace xposcheck::testing {

inline std::string slurp(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Run {
  int status = -1;  // the exit status, or -1 when killed by a signal
  std::string out, err;
};

// Runs `command` through the shell with its output in dir/stdout.txt and dir/stderr.txt.
inline Run run_shell(const std::filesystem::path& dir, const std::string& command) {
  const std::filesystem::path out = dir / "stdout.txt", err = dir / "stderr.txt";
  std::string cmd = command;
  cmd += " >'" + out.string() + "' 2>'" + err.string() + "'";
  const int raw = std::system(cmd.c_str());
  return {WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, slurp(out), slurp(err)};
}

}  // namespace xposcheck::testing
