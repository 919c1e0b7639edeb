#pragma once
// Shared by the reporter tests: the fixed results file, running a reporter into a
// string, counting substrings, temporary folders and running the CLI.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>

#include "xposcheck/harness/results.hpp"
#include "shell_run.hpp"
#include "temp_dir.hpp"
#include "xposcheck/reports/reporter.hpp"

namespace report_test {

namespace fs = std::filesystem;
using xposcheck::testing::Run;
using xposcheck::testing::slurp;
using xposcheck::testing::TempDir;

// tests/reports/data/results-fixture.json (made by tests/reports/data/make-fixture):
// 72 records of 4 candidates x 9 cases x 2 dtypes, with every outcome but PASS-only
// candidates, and a candidate named <script>alert(1)</script>.
inline const fs::path kFixture = fs::path(XPOSCHECK_SOURCE_DIR) / "tests/reports/data/results-fixture.json";
inline constexpr const char* kHostile = "<script>alert(1)</script>";
inline constexpr const char* kHostileEscaped = "&lt;script&gt;alert(1)&lt;/script&gt;";

inline const xposcheck::Results& fixture() {
  static const xposcheck::Results results = xposcheck::read_results(kFixture);
  return results;
}

template <class R, class... Args>
std::string render_under(const xposcheck::Results& results, const xposcheck::GateVerdict& verdict,
                         Args&&... args) {
  std::ostringstream out;
  R reporter(out, std::forward<Args>(args)...);
  xposcheck::Reporter* reporters[] = {&reporter};
  xposcheck::report(results, reporters, verdict);
  return out.str();
}

// Under the default gate policy.
template <class R, class... Args>
std::string render(const xposcheck::Results& results, Args&&... args) {
  return render_under<R>(results, xposcheck::gate_verdict(results), std::forward<Args>(args)...);
}

inline std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}



// Runs a shell command line, capturing stdout, stderr and the exit status.
inline Run run(const TempDir& dir, const std::string& command) {
  return xposcheck::testing::run_shell(dir.path, command);
}

// A command line of single-quoted words.
inline std::string command_line(std::initializer_list<std::string> words) {
  std::string cmd;
  for (const std::string& w : words) {
    if (!cmd.empty()) cmd += ' ';
    cmd += '\'';
    cmd += w;
    cmd += '\'';
  }
  return cmd;
}

inline Run run_cli(const TempDir& dir, std::initializer_list<std::string> args) {
  std::string cmd = command_line({XPOSCHECK_EXE});
  cmd += ' ';
  cmd += command_line(args);
  return run(dir, cmd);
}

// True when s is valid UTF-8 holding only characters XML 1.0 allows.
inline bool xml_clean(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      if (b < 0x20 && b != '\t' && b != '\n' && b != '\r') return false;
      ++i;
      continue;
    }
    const std::size_t len = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC2 ? 2 : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

}  // namespace report_test
