// `xposcheck explain` prints the diagnosis of failing records (and, for one case, the
// decomposition); bad input exits 2 naming the file, case or candidate. `sweep
// --accept-convention` judges a centre convention on its logits.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "xposcheck/harness/builtin_candidates.hpp"
#include "xposcheck/harness/results.hpp"
#include "xposcheck/harness/sweep.hpp"

#include "cli_runner.hpp"

using namespace xposcheck;
using namespace xposcheck::testing;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

GridCase memory_case() {
  Case c;
  c.head_dim = 16;
  c.seq_len = 9;
  c.mem_len = 4;
  return {case_id(c) + "-s1", c, 1};
}

// A results file with a failing (diagnosed) record and a passing one.
fs::path write_sample_results(const TempDir& dir) {
  const GridCase gc = memory_case();
  const Tolerance tol = resolve_tolerance(DType::fp32, {}, {});
  Results results;
  for (const char* name : {"positions-from-zero", "fp32-angles"}) {
    results.records.push_back(evaluate_one(*make_builtin(name), gc, DType::fp32, tol));
  }
  const fs::path file = dir / "results.json";
  write_results(file, results);
  return file;
}

}  // namespace

TEST_CASE("explain prints the diagnosis of each failing record") {
  TempDir dir;
  const fs::path file = write_sample_results(dir);
  const Run r = run_cli(dir, "explain " + q(file));
  INFO(r.err);
  CHECK(r.status == 0);
  CHECK_THAT(r.out, Contains("positions-from-zero D16-N9-M4-s1 fp32 TOLERANCE"));
  CHECK_THAT(r.out, Contains("memory-offset-missing (bug): key positions shifted by +4 (= M)"));
  CHECK_THAT(r.out, Contains("evidence: under SPEC"));
  CHECK(r.out.find("fp32-angles") == std::string::npos);
  CHECK_THAT(r.out, Contains("1 failing or diagnosed records, 1 explained, 0 unexplained"));
}

TEST_CASE("explain --case adds the decomposition") {
  TempDir dir;
  const fs::path file = write_sample_results(dir);
  const Run r =
      run_cli(dir, "explain " + q(file) + " --case D16-N9-M4-s1 --candidate positions-from-zero");
  INFO(r.err);
  CHECK(r.status == 0);
  CHECK_THAT(r.out, Contains("estimates: ") && Contains("key shift +4"));
  CHECK_THAT(r.out, Contains("k_out: ") && Contains("angle slope"));
  CHECK_THAT(r.out, Contains("scores: SPEC (max error/allowed >= "));
  CHECK_THAT(r.out, Contains("memory-offset-missing (fits, max "));
}

TEST_CASE("explain rejects bad input with status 2 and names what is wrong") {
  TempDir dir;
  const fs::path file = write_sample_results(dir);
  SECTION("missing file") {
    const Run r = run_cli(dir, "explain " + q(dir / "nope.json"));
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Contains("nope.json") && Contains("cannot open results file"));
  }
  SECTION("not JSON") {
    std::ofstream(dir / "bad.json") << "{ not json";
    const Run r = run_cli(dir, "explain " + q(dir / "bad.json"));
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Contains("bad.json") && Contains("not valid JSON"));
  }
  SECTION("unknown case id") {
    const Run r = run_cli(dir, "explain " + q(file) + " --case D99-N1-s1");
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Contains("no case 'D99-N1-s1'") && Contains("D16-N9-M4-s1"));
  }
  SECTION("unknown candidate") {
    const Run r = run_cli(dir, "explain " + q(file) + " --candidate nobody");
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Contains("no candidate 'nobody'") && Contains("positions-from-zero"));
  }
  SECTION("no results file given") {
    const Run r = run_cli(dir, "explain");
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Contains("give a results file"));
  }
}

TEST_CASE("explain --hypotheses lists the table in priority order") {
  TempDir dir;
  const Run r = run_cli(dir, "explain --hypotheses");
  CHECK(r.status == 0);
  CHECK_THAT(r.out, Contains("memory-offset-missing") && Contains("key positions shifted by +{M}"));
  CHECK_THAT(r.out, Contains("centre-key-range") && Contains("convention"));
  CHECK(r.out.find("unsliced-scale") < r.out.find("angles-in-dtype"));
}

TEST_CASE("sweep --accept-convention centre accepts torchscale's centre") {
  TempDir dir;
  std::ofstream(dir / "grid.toml") << "name = \"tiny\"\ndtypes = [\"fp32\"]\n[axes]\n"
                                      "head_dim = 16\nseq_len = 9\nmem_len = 4\n";
  const std::string base =
      "sweep --quiet --grid " + q(dir / "grid.toml") + " --candidate torchscale-centre --out ";
  const Run plain = run_cli(dir, base + q(dir / "plain.json"));
  CHECK(plain.status == 1);
  const Run accepted =
      run_cli(dir, base + q(dir / "accepted.json") + " --accept-convention centre");
  INFO(accepted.err);
  CHECK(accepted.status == 0);
  const Run explained = run_cli(dir, "explain " + q(dir / "accepted.json"));
  CHECK_THAT(explained.out, Contains("centre-key-range (convention): centre on the whole key range "
                                     "(torchscale)") &&
                                Contains("[accepted]"));
  const Run bad = run_cli(dir, base + q(dir / "bad.json") + " --accept-convention layout");
  CHECK(bad.status == 2);
  CHECK_THAT(bad.err, Contains("--accept-convention") && Contains("layout"));
}
