// --passes from the command line: a backward sweep writes backward records that say
// so, next to the forward ones, and names the pass in JUnit, Markdown and the HTML
// report; a pass the harness does not know is refused naming the flag.
#include <fstream>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "cli_runner.hpp"

using Catch::Matchers::Contains;
using nlohmann::json;
using xposcheck::testing::q;
using xposcheck::testing::run_cli;
using xposcheck::testing::slurp;
using xposcheck::testing::GridScratch;

namespace {

struct Scratch : GridScratch {
  Scratch()
      : GridScratch("backward", {{"grid.toml", "name = \"tiny\"\ndtypes = [\"bf16\"]\n[axes]\n"
                                               "head_dim = 8\nseq_len = 7\nmem_len = 3\n"}}) {}
  std::string sweep(const std::string& extra) const {
    return sweep_over("grid.toml", "--out " + *this / "r.json" + " --junit " + *this / "j.xml" +
                                       " --summary " + *this / "s.md" + " --report " + *this / "r.html" +
                                       " " + extra);
  }
};

}  // namespace

TEST_CASE("a sweep with --passes forward,backward writes both records of a case and names the pass") {
  const Scratch dir;
  const auto run = run_cli(dir, dir.sweep("--candidate fp32-angles,backward-untransposed --passes forward,backward"));
  INFO(run.err);
  CHECK(run.status == 1);  // the untransposed gradient fails the gate
  const json records = json::parse(slurp(dir.path / "r.json")).at("records");
  REQUIRE(records.size() == 4);
  CHECK(records[0].at("pass") == "forward");
  CHECK(records[1].at("pass") == "backward");
  CHECK(records[1].at("candidate") == "backward-untransposed");
  CHECK(records[1].at("outcome") == "TOLERANCE");
  CHECK(records[1].at("tensors").size() == 2);
  CHECK(records[1].at("tensors")[0].at("name") == "dq");
  CHECK(records[1].at("diagnosis").at("verdict") == "untransposed-rotation");
  CHECK(records[3].at("outcome") == "PASS");
  CHECK_THAT(slurp(dir.path / "j.xml"), Contains("testsuite name=\"xposcheck.fp32-angles.bf16.backward\""));
  CHECK_THAT(slurp(dir.path / "s.md"), Contains("| backward-untransposed | bf16 backward |"));
  // The overview's accuracy matrix and the heatmaps get a backward column.
  const std::string html = slurp(dir.path / "r.html");
  CHECK_THAT(html, Contains("<th class=\"l\">bf16 backward</th>"));
  CHECK_THAT(html, Contains("<div class=\"t\">bf16 backward"));
}

TEST_CASE("an unknown pass is refused naming the flag") {
  const Scratch dir;
  const auto run = run_cli(dir, dir.sweep("--candidate fp32-angles --passes forward,sideways"));
  CHECK(run.status == 2);
  CHECK_THAT(run.err, Contains("--passes") && Contains("unknown pass 'sideways' (forward, backward)"));
}
