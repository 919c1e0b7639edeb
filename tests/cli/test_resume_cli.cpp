// --resume keeps records only of a run with the same grid, candidates (and their code),
// dtypes, resolved tolerance, conventions and logit rows; otherwise it refuses with exit 2
// saying what differs. Journal lines of another run are never merged.
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
      : GridScratch("resume", {{"grid.toml", "name = \"tiny\"\ndtypes = [\"fp32\", \"fp16\"]\n[axes]\n"
                                             "head_dim = 8\nseq_len = [7, 9]\nmem_len = 0\n"},
                               {"other.toml", "name = \"other\"\ndtypes = [\"fp32\", \"fp16\"]\n[axes]\n"
                                              "head_dim = 8\nseq_len = [7, 11]\nmem_len = 0\n"}}) {}
  std::string sweep(const std::string& extra, const std::string& grid = "grid.toml") const {
    return sweep_over(grid, "--out " + *this / "r.json" + " " + extra);
  }
};

}  // namespace

TEST_CASE("resume refuses a run with other settings and says what differs") {
  const Scratch dir;
  REQUIRE(run_cli(dir, dir.sweep("--candidate fp32-angles --base-ulps 8")).status == 0);
  const std::string before = slurp(dir.path / "r.json");
  const auto [extra, says] = GENERATE(table<std::string, std::string>({
      {"--candidate fp32-angles --base-ulps 2", "--base-ulps 8 (fp32), this one 2"},
      {"--candidate fp32-angles,random-garbage --base-ulps 8", "--candidate"},
      {"--candidate fp32-angles --base-ulps 8 --dtypes fp32", "--dtypes"},
      {"--candidate fp32-angles --base-ulps 8 --logit-rows 3", "--logit-rows"},
      {"--candidate fp32-angles --base-ulps 8 --accept-convention centre", "--accept-convention"},
  }));
  const auto run = run_cli(dir, dir.sweep("--resume " + extra));
  INFO(extra << "\n" << run.err);
  CHECK(run.status == 2);
  CHECK_THAT(run.err, Contains("cannot resume"));
  CHECK_THAT(run.err, Contains(says));
  CHECK(slurp(dir.path / "r.json") == before);
}

TEST_CASE("resume with the same settings keeps the records") {
  const Scratch dir;
  REQUIRE(run_cli(dir, dir.sweep("--candidate fp32-angles --base-ulps 8")).status == 0);
  const auto run = run_cli(dir, "sweep --jobs 1 --grid " + q(dir.path / "grid.toml") + " --out " +
                                    q(dir.path / "r.json") + " --resume --candidate fp32-angles --base-ulps 8");
  INFO(run.err);
  CHECK(run.status == 0);
  CHECK_THAT(run.err, Contains("4 results resumed"));
}

TEST_CASE("a journal of another grid is refused, one without a header ignored") {
  const Scratch dir;
  REQUIRE(run_cli(dir, dir.sweep("--candidate random-garbage", "other.toml")).status == 1);
  json other = json::parse(slurp(dir.path / "r.json"));
  std::filesystem::remove(dir.path / "r.json");
  // A garbage record relabelled as fp32-angles: merged, it would fail the gate.
  json fake = other.at("records").at(0);
  fake["candidate"] = "fp32-angles";
  fake["case_id"] = "d8-n7-m0-s1";
  const auto journal = dir.path / "r.json.journal";

  std::ofstream(journal) << json{{"journal_of", other.at("run")}}.dump() << '\n' << fake.dump() << '\n';
  auto run = run_cli(dir, dir.sweep("--resume --candidate fp32-angles"));
  INFO(run.err);
  CHECK(run.status == 2);
  CHECK_THAT(run.err, Contains("r.json.journal"));
  CHECK_THAT(run.err, Contains("another grid"));

  std::ofstream(journal, std::ios::trunc) << fake.dump() << '\n';
  run = run_cli(dir, dir.sweep("--resume --candidate fp32-angles"));
  INFO(run.out << run.err);
  CHECK(run.status == 0);
}

TEST_CASE("resume refuses other code under the same candidate name") {
  // The name is the user's: the command and the bytes of the files it names tell what
  // ran, so that records of other code are never kept (a correct run's PASS records
  // under a buggy candidate's name would pass the gate).
  const Scratch dir;
  const auto script = dir.path / "cand.sh";
  std::ofstream(script) << "exit 3\n";
  const std::string command = "--candidate-name cand --candidate-cmd " + q("sh " + script.string());
  REQUIRE(run_cli(dir, dir.sweep(command)).status == 1);

  const auto same = run_cli(dir, "sweep --jobs 1 --grid " + q(dir.path / "grid.toml") + " --out " +
                                     q(dir.path / "r.json") + " --resume " + command);
  INFO(same.err);
  CHECK(same.status == 1);
  CHECK_THAT(same.err, Contains("4 results resumed"));

  std::ofstream(script, std::ios::trunc) << "exit 4\n";
  const std::string kept = slurp(dir.path / "r.json");
  const auto edited = run_cli(dir, dir.sweep("--resume " + command));
  INFO(edited.err);
  CHECK(edited.status == 2);
  CHECK_THAT(edited.err, Contains("cannot resume") && Contains("its candidate cand was other code") &&
                             Contains(script.string()));
  CHECK(slurp(dir.path / "r.json") == kept);
}
