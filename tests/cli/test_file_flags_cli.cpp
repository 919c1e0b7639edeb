// Outputs that are inputs or other outputs of the same command are refused with exit
// 2 naming both flags (they once destroyed a file and exited 0); a directory as --out
// is refused before the run; two sweeps on one --out cannot both write it.
#include <string>

#include <catch2/catch.hpp>

#include "cli_runner.hpp"

using Catch::Matchers::Contains;
using xposcheck::testing::q;
using xposcheck::testing::run_cli;
using xposcheck::testing::run_shell;
using xposcheck::testing::slurp;
using xposcheck::testing::GridScratch;

namespace {

struct Scratch : GridScratch {
  Scratch()
      : GridScratch("file-flags", {{"grid.toml", "name = \"tiny\"\ndtypes = [\"fp32\"]\n[axes]\n"
                                                 "head_dim = 8\nseq_len = 7\nmem_len = 0\n"}}) {}
  std::string sweep(const std::string& extra) const { return sweep_over("grid.toml", "--candidate fp32-angles " + extra); }
};

}  // namespace

TEST_CASE("report refuses to write over its results") {
  const Scratch dir;
  REQUIRE(run_cli(dir, dir.sweep("--out " + dir / "r.json")).status == 0);
  const std::string before = slurp(dir.path / "r.json");
  const auto run = run_cli(dir, "report " + dir / "r.json" + " -o " + dir / "./r.json");
  INFO(run.err);
  CHECK(run.status == 2);
  CHECK_THAT(run.err, Contains("--out"));
  CHECK_THAT(run.err, Contains("results"));
  CHECK(slurp(dir.path / "r.json") == before);
}

TEST_CASE("sweep refuses an output that is its grid, its baseline or another output") {
  const Scratch dir;
  REQUIRE(run_cli(dir, dir.sweep("--out " + dir / "a.json")).status == 0);
  REQUIRE(run_cli(dir, "baseline save " + dir / "a.json" + " -o " + dir / "b.json").status == 0);
  const std::string grid = slurp(dir.path / "grid.toml");
  // Generated once for every run of the test: file names only, the scratch directory changes.
  const auto [out, flag, file, first, second] = GENERATE(table<std::string, std::string, std::string, std::string, std::string>({
      {"x.json", "--report", "x.json", "--out", "--report"},
      {"b.json", "--baseline", "b.json", "--baseline", "--out"},
      {"c.json", "--summary", "grid.toml", "--grid", "--summary"},
  }));
  const std::string extra = "--out " + dir / out + " " + flag + " " + dir / file;
  const auto run = run_cli(dir, dir.sweep(extra));
  INFO(extra << "\n" << run.err);
  CHECK(run.status == 2);
  CHECK_THAT(run.err, Contains(first));
  CHECK_THAT(run.err, Contains(second));
  CHECK(slurp(dir.path / "grid.toml") == grid);
  CHECK_FALSE(std::filesystem::exists(dir.path / "x.json"));
}

TEST_CASE("merge and baseline refuse an output that is an input") {
  const Scratch dir;
  REQUIRE(run_cli(dir, dir.sweep("--out " + dir / "a.json")).status == 0);
  const std::string command = GENERATE(as<std::string>{}, "merge", "baseline save --force");
  const std::string args = command + " " + dir / "a.json" + " -o " + dir / "a.json";
  const std::string before = slurp(dir.path / "a.json");
  const auto run = run_cli(dir, args);
  INFO(args << "\n" << run.err);
  CHECK(run.status == 2);
  CHECK_THAT(run.err, Contains("--out"));
  CHECK(slurp(dir.path / "a.json") == before);
}

TEST_CASE("a directory as --out is refused before the run") {
  const Scratch dir;
  std::filesystem::create_directory(dir.path / "outdir");
  const auto run = run_cli(dir, "sweep --verbose --grid " + dir / "grid.toml" + " --candidate fp32-angles --out " +
                                    dir / "outdir");
  INFO(run.out << run.err);
  CHECK(run.status == 2);
  CHECK_THAT(run.err, Contains("directory"));
  CHECK(run.err.find("[1/") == std::string::npos);  // nothing ran: --verbose would show every record
}

TEST_CASE("a second sweep on the same --out fails while the first holds it") {
  const Scratch dir;
  // flock(1) holds the lock the way a running sweep does.
  const std::string cmd = "flock " + dir / "r.json.lock" + " '" + XPOSCHECK_EXE + "' " + dir.sweep("--out " + dir / "r.json");
  const auto run = run_shell(dir.path, cmd);
  INFO(run.err);
  CHECK(run.status == 2);
  CHECK_THAT(run.err, Contains("another sweep is writing"));
  CHECK_FALSE(std::filesystem::exists(dir.path / "r.json"));
}
