// Every numeric flag refuses NaN, infinities and out-of-range values with exit 2 and a
// message naming the flag, as the grid parser does: `--base-ulps nan` once made
// every comparison pass and random-garbage got `gate: PASS`.
#include <string>

#include <catch2/catch.hpp>

#include "cli_runner.hpp"

using Catch::Matchers::Contains;
using xposcheck::testing::q;
using xposcheck::testing::run_cli;
using xposcheck::testing::TempDir;

namespace {

std::string tiny_grid(const TempDir& dir) {
  std::ofstream(dir.path / "grid.toml") << "name = \"tiny\"\ndtypes = [\"fp32\"]\n[axes]\n"
                                           "head_dim = 8\nseq_len = 7\nmem_len = 0\n";
  return q(dir.path / "grid.toml");
}

}  // namespace

TEST_CASE("sweep refuses non-finite and out-of-range numeric flags before running") {
  const std::string flag = GENERATE(as<std::string>{}, "--base-ulps", "--angle-factor", "--scale-factor",
                                    "--logits-factor", "--logits-bias", "--relative-k", "--relative-floor",
                                    "--drift-factor", "--drift-floor", "--case-timeout", "--batch-timeout");
  const std::string value = GENERATE(as<std::string>{}, "nan", "NaN", "inf", "-inf", "-1", "1e400", "x");
  const TempDir dir("xposcheck-numeric-flags");
  const auto run = run_cli(dir, "sweep --quiet --grid " + tiny_grid(dir) + " --candidate random-garbage " + flag +
                                    "=" + value + " --out " + q(dir.path / "r.json"));
  INFO(flag << " " << value << "\n" << run.out << run.err);
  CHECK(run.status == 2);
  CHECK_THAT(run.err, Contains(flag));
  CHECK_THAT(run.err, Contains("finite number"));
  CHECK_FALSE(std::filesystem::exists(dir.path / "r.json"));
}

TEST_CASE("sweep --horizon takes 2^-k or a number above 0 and at most 1, and refuses anything else by name") {
  const std::string value = GENERATE(as<std::string>{}, "nan", "inf", "0", "-1", "2", "2^3", "2^", "1e400", "x");
  const TempDir dir("xposcheck-numeric-flags");
  const auto run = run_cli(dir, "sweep --quiet --grid " + tiny_grid(dir) + " --candidate fp32-angles --horizon=" +
                                    value + " --out " + q(dir.path / "r.json"));
  INFO(value << "\n" << run.out << run.err);
  CHECK(run.status == 2);
  CHECK_THAT(run.err, Contains("--horizon"));
  CHECK_THAT(run.err, Contains("want a finite number in (0, 1]"));
  CHECK_FALSE(std::filesystem::exists(dir.path / "r.json"));
}

TEST_CASE("sweep --horizon sets the threshold the summary states the horizon at") {
  const TempDir dir("xposcheck-numeric-flags");
  const auto run = run_cli(dir, "sweep --quiet --grid " + tiny_grid(dir) + " --candidate fp32-angles,wrong-layout "
                                "--horizon 2^-20 --out " + q(dir.path / "r.json"));
  INFO(run.out << run.err);
  CHECK(run.status == 1);  // wrong-layout fails; the horizon changes no outcome
  CHECK_THAT(run.out, Contains("horizon fp32-angles fp32: no horizon within the grid (error <= 2^-20 up to position 6)"));
  CHECK_THAT(run.out, Contains("horizon wrong-layout fp32: error > 2^-20 beyond position ~"));
}

TEST_CASE("a refused range is printed readably, not as 309 digits") {
  const TempDir dir("xposcheck-numeric-flags");
  const auto run = run_cli(dir, "sweep --quiet --grid " + tiny_grid(dir) + " --base-ulps -1");
  INFO(run.err);
  CHECK(run.status == 2);
  CHECK_THAT(run.err, Contains(">= 0"));
  CHECK(run.err.find("179769313486231570") == std::string::npos);
}

TEST_CASE("golden refuses non-finite case parameters") {
  const std::string flag = GENERATE(as<std::string>{}, "--base", "--base-rescale", "--interpolation", "--scale-base");
  const TempDir dir("xposcheck-numeric-flags");
  const auto run = run_cli(dir, "golden --head-dim 8 --seq-len 4 " + flag + " nan --out " + q(dir.path / "g"));
  INFO(run.err);
  CHECK(run.status == 2);
  CHECK_THAT(run.err, Contains(flag));
  CHECK_THAT(run.err, Contains("finite number"));
}

TEST_CASE("valid numeric flags are still accepted") {
  const TempDir dir("xposcheck-numeric-flags");
  const auto run = run_cli(dir, "sweep --quiet --grid " + tiny_grid(dir) + " --candidate fp32-angles --base-ulps 2.5 "
                                "--drift-floor 0 --case-timeout 5 --out " + q(dir.path / "r.json"));
  INFO(run.out << run.err);
  CHECK(run.status == 0);
}
