// Messages that name what is wrong: the flag that really repeated a candidate, a
// missing $TMPDIR as a usage error before the run, a grid value at its key.
#include <string>

#include <catch2/catch.hpp>

#include "cli_runner.hpp"

using Catch::Matchers::Contains;
using xposcheck::testing::q;
using xposcheck::testing::run_cli;
using xposcheck::testing::run_shell;
using xposcheck::testing::TempDir;

namespace {

std::string tiny_grid(const TempDir& dir, const std::string& axes = "head_dim = 8\nseq_len = 7\n") {
  std::ofstream(dir.path / "grid.toml") << "name = \"tiny\"\ndtypes = [\"fp32\"]\n[axes]\n" << axes;
  return q(dir.path / "grid.toml");
}

}  // namespace

TEST_CASE("a built-in named twice is blamed on --candidate") {
  const TempDir dir("xposcheck-messages");
  const auto run = run_cli(dir, "sweep --quiet --grid " + tiny_grid(dir) + " --candidate fp32-angles,fp32-angles --out " +
                                    q(dir.path / "r.json"));
  INFO(run.err);
  CHECK(run.status == 2);
  CHECK_THAT(run.err, Contains("--candidate: two candidates named 'fp32-angles'"));
  CHECK(run.err.find("--candidate-name") == std::string::npos);
}

TEST_CASE("a missing TMPDIR is a usage error before the run, not a CRASH of every candidate") {
  const TempDir dir("xposcheck-messages");
  const std::string cmd = "TMPDIR=" + q(dir.path / "gone") + " '" + XPOSCHECK_EXE + "' sweep --grid " + tiny_grid(dir) +
                          " --candidate-cmd true --out " + q(dir.path / "r.json");
  const auto run = run_shell(dir.path, cmd);
  INFO(run.out << run.err);
  CHECK(run.status == 2);
  CHECK_THAT(run.err, Contains("TMPDIR"));
  CHECK_THAT(run.err, Contains("gone"));
  CHECK(run.out.find("CRASH") == std::string::npos);
}

TEST_CASE("an oversized seq_len is reported at its key and line") {
  const TempDir dir("xposcheck-messages");
  const auto run = run_cli(dir, "sweep --quiet --grid " + tiny_grid(dir, "head_dim = 8\n\nseq_len = 2147483648\n") +
                                    " --candidate fp32-angles --out " + q(dir.path / "r.json"));
  INFO(run.err);
  CHECK(run.status == 2);
  CHECK_THAT(run.err, Contains("seq_len"));
  CHECK_THAT(run.err, Contains(":6"));
}
