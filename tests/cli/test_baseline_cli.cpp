// `xposcheck baseline`, `sweep --baseline/--shard` and `merge`, run as a user would:
// DRIFT fails the gate, updates are shown before they are written, shards merge into
// the unsharded results, and bad files or shard values exit 2 naming them.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "shell_run.hpp"
#include "temp_dir.hpp"

using Catch::Matchers::Contains;
namespace fs = std::filesystem;
using nlohmann::json;

using xposcheck::testing::Run;
using xposcheck::testing::run_shell;
using xposcheck::testing::slurp;

namespace {

// A scratch directory with a small grid in it; `dir / name` is a path string.
struct Scratch : xposcheck::testing::TempDir {
  Scratch() : TempDir("xposcheck-baseline-cli") {
    // Small and quick: 6 cases x 2 dtypes.
    std::ofstream(path / "grid.toml") << "name = \"tiny\"\ndtypes = [\"fp32\", \"fp16\"]\n[axes]\n"
                                         "head_dim = 16\nseq_len = [7, 64, 256]\nmem_len = [0, 5]\n";
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

// Runs `xposcheck <args>` with `env` prepended (VAR=value ...), outside any CI shard
// the test itself may run in.
Run run_cli(const Scratch& dir, const std::string& args, const std::string& env = "") {
  std::string cmd = "env -u XPOSCHECK_SHARD -u XPOSCHECK_SHARD_COUNT -u JOB_COMPLETION_INDEX "
                    "-u SLURM_ARRAY_TASK_ID " + env + " '" + XPOSCHECK_EXE + "' " + args;
  return run_shell(dir.path, cmd);
}

std::string sweep(const Scratch& dir, const std::string& candidate, const std::string& out) {
  return "sweep --quiet --jobs 2 --grid '" + dir / "grid.toml" + "' --candidate " + candidate + " --out '" +
         dir / out + "'";
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

json records_of(const std::string& file) { return json::parse(slurp(file)).at("records"); }

// A baseline of fp32-angles relabelled as the sloppy variant's: "yesterday's" numbers
// for the candidate that runs today.
void write_sloppy_baseline(const Scratch& dir) {
  REQUIRE(run_cli(dir, sweep(dir, "fp32-angles", "a.json")).status == 0);
  REQUIRE(run_cli(dir, "baseline save '" + dir / "a.json" + "' -o '" + dir / "base.json" + "'").status == 0);
  std::ofstream(dir / "sloppy-base.json")
      << replace_all(slurp(dir / "base.json"), "\"candidate\":\"fp32-angles\"", "\"candidate\":\"fp32-angles-sloppy\"");
}

}  // namespace

TEST_CASE("a clean rerun passes the baseline gate and sloppier arithmetic fails it", "[cli][baseline]") {
  Scratch dir;
  write_sloppy_baseline(dir);
  const std::string base = dir / "base.json";
  CHECK_THAT(slurp(base), Contains("\"schema\": \"xposcheck-baseline\""));

  const Run again = run_cli(dir, "baseline save '" + dir / "a.json" + "' -o '" + base + "'");
  CHECK(again.status == 2);
  CHECK_THAT(again.err, Contains(base + " exists") && Contains("baseline update"));

  const Run clean = run_cli(dir, sweep(dir, "fp32-angles", "b.json") + " --baseline '" + base + "'");
  INFO(clean.out << clean.err);
  CHECK(clean.status == 0);
  CHECK_THAT(clean.out, Contains("drift: 12 compared, 0 regressed, 0 improved, 12 unchanged, 0 new"));
  CHECK_THAT(clean.out, Contains("envelope fp32-angles fp16: M=0: N<=256 (all pass), M=5: N<=256 (all pass)"));
  CHECK_THAT(clean.out, Contains("gate: PASS"));

  const std::string sloppy = " --baseline '" + dir / "sloppy-base.json" + "'";
  const Run drift = run_cli(dir, sweep(dir, "fp32-angles-sloppy", "c.json") + sloppy);
  INFO(drift.out << drift.err);
  CHECK(drift.status == 1);
  CHECK_THAT(drift.out, Contains("DRIFT") && Contains("REGRESSED fp32-angles-sloppy D16-N64-s1 fp16: DRIFT: "));
  CHECK_THAT(drift.out, Contains("gate: FAIL"));
  std::size_t drifted = 0;
  for (const json& r : records_of(dir / "c.json")) {
    if (r.at("outcome") != "DRIFT") continue;
    ++drifted;
    CHECK(r.at("drift").at("verdict") == "regressed");
    CHECK(r.at("drift").at("baseline_outcome") == "PASS");
  }
  CHECK(drifted >= 4);

  const Run lenient = run_cli(dir, sweep(dir, "fp32-angles-sloppy", "d.json") + sloppy + " --drift-factor 100");
  CHECK(lenient.status == 0);
  CHECK_THAT(lenient.out, Contains(" 0 regressed"));
}

TEST_CASE("baseline update shows the diff and writes only with --write", "[cli][baseline]") {
  Scratch dir;
  write_sloppy_baseline(dir);
  const std::string base = dir / "sloppy-base.json";
  const std::string before = slurp(base);
  REQUIRE(run_cli(dir, sweep(dir, "fp32-angles-sloppy", "s.json")).status == 0);
  const std::string update = "baseline update '" + dir / "s.json" + "' -b '" + base + "'";

  const Run shown = run_cli(dir, update);
  INFO(shown.out << shown.err);
  CHECK(shown.status == 1);
  CHECK(shown.out.find("~ tool version") == std::string::npos);
  CHECK_THAT(shown.out, Contains("~ fp32-angles-sloppy D16-N64-s1 fp16: q_out max 0."));
  CHECK_THAT(shown.out, Contains("nothing written") && Contains("--write"));
  CHECK(slurp(base) == before);

  const Run written = run_cli(dir, update + " --write");
  CHECK(written.status == 0);
  CHECK_THAT(written.out, Contains("updated"));
  CHECK(slurp(base) != before);
  const Run current = run_cli(dir, update);
  CHECK(current.status == 0);
  CHECK_THAT(current.out, Contains("is up to date"));

  std::ofstream(dir / "old.json") << before;
  const Run diff = run_cli(dir, "baseline diff '" + dir / "old.json" + "' '" + base + "'");
  CHECK(diff.status == 1);
  CHECK_THAT(diff.out, Contains("~ fp32-angles-sloppy D16-N64-s1 fp16: q_out max 0."));
  const Run same = run_cli(dir, "baseline diff '" + base + "' '" + base + "'");
  CHECK(same.status == 0);
  CHECK_THAT(same.out, Contains("identical"));
}

TEST_CASE("bad baseline files and shard values exit 2 naming them", "[cli][baseline]") {
  Scratch dir;
  REQUIRE(run_cli(dir, sweep(dir, "fp32-angles", "a.json")).status == 0);
  std::ofstream(dir / "broken.json") << "{\"schema\": \"xposcheck-baseline\", \"schema_version\": 1";
  const std::pair<std::string, std::string> bad_baselines[] = {
      {dir / "broken.json", "not valid JSON"},
      {dir / "a.json", "this is a results file"},
  };
  for (const auto& [file, problem] : bad_baselines) {
    const Run r = run_cli(dir, sweep(dir, "fp32-angles", "x.json") + " --baseline '" + file + "'");
    INFO(r.err);
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Contains(file + ": ") && Contains(problem));
    const Run u = run_cli(dir, "baseline update '" + dir / "a.json" + "' -b '" + file + "'");
    CHECK(u.status == 2);
    CHECK_THAT(u.err, Contains(file));
  }
  CHECK_FALSE(fs::exists(dir / "x.json"));  // refused before the sweep ran

  for (const char* shard : {"0/2", "3/2", "x", "1/0"}) {
    const Run r = run_cli(dir, sweep(dir, "fp32-angles", "x.json") + " --shard " + shard);
    INFO(shard << ": " << r.err);
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Contains("--shard") && Contains(std::string("'") + shard + "'"));
  }
  const Run env = run_cli(dir, sweep(dir, "fp32-angles", "x.json"), "XPOSCHECK_SHARD=5/2");
  CHECK(env.status == 2);
  CHECK_THAT(env.err, Contains("XPOSCHECK_SHARD") && Contains("outside 1..2"));
  const Run factor = run_cli(dir, sweep(dir, "fp32-angles", "x.json") + " --drift-factor 0.5");
  CHECK(factor.status == 2);
  CHECK_THAT(factor.err, Contains("--drift-factor"));
}

TEST_CASE("shards from flags or the environment merge into the unsharded results", "[cli][shard]") {
  Scratch dir;
  REQUIRE(run_cli(dir, sweep(dir, "fp32-angles,wrong-layout", "all.json")).status == 1);  // wrong-layout fails
  std::string merge = "merge -o '" + dir / "merged.json" + "'";
  for (int k = 1; k <= 3; ++k) {
    std::string out = "s";  // built in steps: GCC 12 warns (-Wrestrict) on "s" + to_string(k)
    out += std::to_string(k);
    out += ".json";
    // Shard 2 comes from the environment, the way a CI matrix sets it.
    const Run r = k == 2 ? run_cli(dir, sweep(dir, "fp32-angles,wrong-layout", out), "XPOSCHECK_SHARD=2/3")
                         : run_cli(dir, sweep(dir, "fp32-angles,wrong-layout", out) + " --shard " +
                                            std::to_string(k) + "/3");
    INFO(r.err);
    REQUIRE(r.status == 1);  // wrong-layout fails the gate in every shard
    CHECK(json::parse(slurp(dir / out)).at("run").at("shard") == std::to_string(k) + "/3");
    merge += " '" + dir / out + "'";
  }
  const Run merged = run_cli(dir, merge);
  INFO(merged.err);
  REQUIRE(merged.status == 0);
  CHECK_THAT(merged.out, Contains("merged 3 files: 24 records"));
  const json merged_records = records_of(dir / "merged.json"), all_records = records_of(dir / "all.json");
  REQUIRE(merged_records.size() == all_records.size());
  for (std::size_t i = 0; i < all_records.size(); ++i) {
    INFO(all_records[i].at("case_id"));
    CHECK(merged_records[i].at("candidate") == all_records[i].at("candidate"));
    CHECK(merged_records[i].at("case_id") == all_records[i].at("case_id"));
    CHECK(merged_records[i].at("dtype") == all_records[i].at("dtype"));
    CHECK(merged_records[i].at("outcome") == all_records[i].at("outcome"));
    CHECK(merged_records[i].at("max_ratio").get<double>() == Approx(all_records[i].at("max_ratio").get<double>()).epsilon(1e-9));
  }
  CHECK(json::parse(slurp(dir / "merged.json")).at("run").at("shard") == "");

  const Run off = run_cli(dir, sweep(dir, "fp32-angles", "off.json") + " --shard none", "XPOSCHECK_SHARD=2/3");
  CHECK(off.status == 0);
  CHECK(json::parse(slurp(dir / "off.json")).at("records").size() == 12);

  const Run lone = run_cli(dir, "baseline save '" + dir / "s1.json" + "' -o '" + dir / "lone.json" + "'");
  CHECK(lone.status == 2);
  CHECK_THAT(lone.err, Contains("shard 1/3") && Contains("merge"));

  REQUIRE(run_cli(dir, sweep(dir, "fp32-angles,wrong-layout", "t2.json") + " --shard 2/3 --base-ulps 5").status == 1);
  const Run mismatch = run_cli(dir, "merge -o '" + dir / "bad.json" + "' '" + dir / "s1.json" + "' '" + dir / "t2.json" + "'");
  CHECK(mismatch.status == 2);
  CHECK_THAT(mismatch.err, Contains(dir / "s1.json") && Contains(dir / "t2.json") && Contains("tolerance"));
}
