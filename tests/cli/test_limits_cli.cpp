// Grids and flags that would explode are refused before anything runs, with the
// estimate and the limit (exit 2): a case larger than memory, more than 1,000,000
// cases over all sub-grids and seeds, more shards than units, a grid that is not a
// regular file.
#include <string>

#include <catch2/catch.hpp>

#include "cli_runner.hpp"

using Catch::Matchers::Contains;
using xposcheck::testing::q;
using xposcheck::testing::run_shell;
using xposcheck::testing::TempDir;
using xposcheck::testing::Run;

namespace {

// The cap stands in for a small machine, so the tests mean the same everywhere.
Run run_capped(const TempDir& dir, const std::string& args) {
  std::string cmd = "env -u XPOSCHECK_SHARD -u JOB_COMPLETION_INDEX -u SLURM_ARRAY_TASK_ID "
                    "XPOSCHECK_MAX_MEMORY_MB=2048 '";
  cmd += XPOSCHECK_EXE;
  cmd += "' " + args;
  return run_shell(dir.path, cmd);
}

std::string write_grid(const TempDir& dir, const std::string& text) {
  std::ofstream(dir.path / "grid.toml") << "name = \"g\"\ndtypes = [\"fp32\"]\n" << text;
  return q(dir.path / "grid.toml");
}

// `sweep --quiet` of a grid of these axes with the given flags, memory capped.
Run sweep_capped(const TempDir& dir, const std::string& axes, const std::string& flags) {
  return run_capped(dir, "sweep --quiet --grid " + write_grid(dir, "[axes]\n" + axes) + " " + flags + " --out " +
                             q(dir.path / "r.json"));
}

}  // namespace

// A candidate that rotates rows alone would take such a case in blocks; one that
// keeps state between rows (stale-cache) needs it whole.
TEST_CASE("a case larger than memory is refused with its estimate") {
  const TempDir dir("xposcheck-limits");
  const auto run = sweep_capped(dir, "head_dim = 16\nseq_len = 8\nmem_len = 100000000\nxpos = false\n",
                                "--candidate fp32-angles,stale-cache");
  INFO(run.err);
  CHECK(run.status == 2);
  CHECK_THAT(run.err, Contains("would need about"));
  CHECK_THAT(run.err, Contains("GiB"));
  CHECK_THAT(run.err, Contains("2 GiB"));
  CHECK_THAT(run.err, Contains("the whole case for stale-cache, which cannot be given it a block of rows at a time"));
}

TEST_CASE("a head too wide for one block of rows is refused even for candidates that rotate rows") {
  const TempDir dir("xposcheck-limits");
  const auto run = sweep_capped(dir, "head_dim = 500000000\nseq_len = 2\nxpos = false\n", "--candidate fp32-angles");
  INFO(run.err);
  CHECK(run.status == 2);
  CHECK_THAT(run.err, Contains("would need about"));
  CHECK_THAT(run.err, Contains("blocks of rows for every candidate"));
}

// The fast path streams: a block of rows, not the case, must fit (one row of a billion
// features does not). The exact path holds the whole case, every logit row included.
TEST_CASE("golden refuses cases larger than memory: wide heads, every logit row") {
  const TempDir dir("xposcheck-limits");
  const std::string args = GENERATE(as<std::string>{}, "--head-dim 1000000000 --seq-len 1",
                                    "--head-dim 8 --seq-len 20000 --logit-rows 0 --exact");
  const auto run = run_capped(dir, "golden " + args + " --out " + q(dir.path / "g"));
  INFO(args << "\n" << run.err);
  CHECK(run.status == 2);
  CHECK_THAT(run.err, Contains("would need about"));
  CHECK(run.err.find("bad_alloc") == std::string::npos);
}

TEST_CASE("the case limit counts every sub-grid and every seed") {
  const TempDir dir("xposcheck-limits");
  std::string seeds = "seeds = [";
  for (int s = 0; s < 100000; ++s) seeds += std::to_string(s) + ",";
  seeds += "]\n";
  std::string tables;  // 20 tables of 300 x 200 = 60,000 combinations each
  std::string dims = "[", lengths = "[";
  for (int v = 1; v <= 300; ++v) dims += std::to_string(2 * v) + ",";
  for (int v = 1; v <= 200; ++v) lengths += std::to_string(v) + ",";
  for (int t = 0; t < 20; ++t)
    tables += "[[grid]]\nhead_dim = " + dims + "]\nseq_len = " + lengths + "]\nmem_len = " + std::to_string(t) + "\n";
  const std::string body = GENERATE_COPY(seeds + "[axes]\nhead_dim = 8\nseq_len = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]\n",
                                         tables);
  const auto run = run_capped(dir, "sweep --quiet --grid " + write_grid(dir, body) + " --candidate fp32-angles --out " +
                                       q(dir.path / "r.json"));
  INFO(run.err);
  CHECK(run.status == 2);
  CHECK_THAT(run.err, Contains("more than 1000000 cases"));
}

TEST_CASE("more shards than units are refused at once") {
  const TempDir dir("xposcheck-limits");
  const auto run = sweep_capped(dir, "head_dim = 8\nseq_len = [1, 2, 3]\n", "--candidate fp32-angles --shard 1/100000000");
  INFO(run.err);
  CHECK(run.status == 2);
  CHECK_THAT(run.err, Contains("--shard"));
  CHECK_THAT(run.err, Contains("3 units"));
}

TEST_CASE("a grid that is not a regular file is refused") {
  const TempDir dir("xposcheck-limits");
  const auto run = run_capped(dir, "sweep --quiet --grid /dev/zero --candidate fp32-angles --out " + q(dir.path / "r.json"));
  INFO(run.err);
  CHECK(run.status == 2);
  CHECK_THAT(run.err, Contains("/dev/zero"));
  CHECK_THAT(run.err, Contains("regular file"));
}

TEST_CASE("an allocation that fails anyway names what it was for") {
  const TempDir dir("xposcheck-limits");
  // Address space below the estimate's limit: the logits allocation itself fails.
  const std::string cmd = "ulimit -v 1500000; '" + std::string(XPOSCHECK_EXE) +
                          "' golden --head-dim 8 --seq-len 20000 --logit-rows 0 --exact --out " + q(dir.path / "g");
  const auto run = run_shell(dir.path, cmd);
  INFO(run.err);
  CHECK(run.status == 2);
  CHECK(run.err.find("bad_alloc") == std::string::npos);
  const bool named = run.err.find("out of memory allocating") != std::string::npos ||
                     run.err.find("would need about") != std::string::npos;  // a machine under 10 GiB
  CHECK(named);
}
