#pragma once
// Shared by the CLI tests: a scratch directory and a way to run the built
// executable, capturing stdout, stderr and the exit status.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <utility>
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

// A scratch directory holding small grid files (name, TOML text), and the command line
// of a sweep over one of them: what the tests of sweep's flags share.
struct GridScratch : TempDir {
  GridScratch(const std::string& label, std::initializer_list<std::pair<const char*, const char*>> grids)
      : TempDir("xposcheck-" + label) {
    for (const auto& [name, text] : grids) std::ofstream(path / name) << text;
  }
  // A path in the directory, quoted for the shell.
  std::string operator/(const std::string& name) const { return q(path / name); }
  // "sweep --quiet --jobs 1 --grid GRID EXTRA"
  std::string sweep_over(const std::string& grid, const std::string& extra) const {
    return "sweep --quiet --jobs 1 --grid " + *this / grid + " " + extra;
  }
};

}  // namespace xposcheck::testing
