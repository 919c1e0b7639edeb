// explain, merge and baseline print names and messages read from results files:
// a file holding ESC sequences or U+202E must not reach the terminal raw.
#include <string>

#include <catch2/catch.hpp>

#include "cli_runner.hpp"

using xposcheck::testing::q;
using xposcheck::testing::run_cli;
using xposcheck::testing::slurp;
using xposcheck::testing::TempDir;

namespace {

const std::string kEsc = "\x1b";
const std::string kRlo = "\xe2\x80\xae";  // U+202E RIGHT-TO-LEFT OVERRIDE

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

// Results of random-garbage whose candidate name carries an ESC sequence and U+202E.
struct Hostile : TempDir {
  Hostile() : TempDir("xposcheck-terminal") {
    std::ofstream(path / "grid.toml") << "name = \"tiny\"\ndtypes = [\"fp32\"]\n[axes]\n"
                                         "head_dim = 8\nseq_len = 7\nmem_len = 0\n";
    REQUIRE(run_cli(*this, "sweep --quiet --grid " + q(path / "grid.toml") + " --candidate random-garbage --out " +
                               q(path / "clean.json")).status == 1);
    std::ofstream(path / "r.json") << replace_all(slurp(path / "clean.json"), "\"random-garbage\"",
                                                  "\"evil\\u001b[2J\\u202egarbage\"");
  }
};

void check_escaped(const xposcheck::testing::Run& run) {
  INFO(run.out << run.err);
  CHECK(run.out.find(kEsc) == std::string::npos);
  CHECK(run.err.find(kEsc) == std::string::npos);
  CHECK(run.out.find(kRlo) == std::string::npos);
  CHECK(run.err.find(kRlo) == std::string::npos);
}

}  // namespace

TEST_CASE("explain escapes what the results file says") {
  const Hostile dir;
  const auto run = run_cli(dir, "explain " + q(dir.path / "r.json"));
  CHECK(run.out.find("evil\\x1b[2J\\u{202e}garbage") != std::string::npos);
  check_escaped(run);
}

TEST_CASE("baseline update and check escape names from the files") {
  const Hostile dir;
  REQUIRE(run_cli(dir, "baseline save " + q(dir.path / "clean.json") + " -o " + q(dir.path / "b.json")).status == 0);
  check_escaped(run_cli(dir, "baseline update " + q(dir.path / "r.json") + " -b " + q(dir.path / "b.json")));
  check_escaped(run_cli(dir, "baseline check " + q(dir.path / "r.json") + " -b " + q(dir.path / "b.json")));
}

TEST_CASE("merge escapes names from the files, in its output and its errors") {
  const Hostile dir;
  check_escaped(run_cli(dir, "merge " + q(dir.path / "r.json") + " " + q(dir.path / "r.json") + " -o " +
                                 q(dir.path / "m.json")));
  check_escaped(run_cli(dir, "merge " + q(dir.path / "r.json") + " -o " + q(dir.path / "m2.json")));
}
