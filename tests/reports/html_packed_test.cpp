// Packed batches in the results and the reports: the verdict of every sequence survives
// the results file, a forged one is refused; the HTML Packed batches section shows one
// cell per sequence and the failing ones; JUnit one testcase per batch and dtype.
#include <catch2/catch.hpp>

#include <fstream>

#include "report_test_support.hpp"
#include "xposcheck/harness/builtin_candidates.hpp"
#include "xposcheck/harness/results.hpp"
#include "xposcheck/harness/sweep.hpp"
#include "xposcheck/reports/html_reporter.hpp"
#include "xposcheck/reports/junit_reporter.hpp"
#include "temp_dir.hpp"

using namespace xposcheck;
using Catch::Matchers::Contains;

namespace {

Results packed_results() {
  Case c;
  c.head_dim = 16;
  c.packed = PackedBatch::of({{6, 0, {}, {}}, {4, 2, {}, {}}, {3, 0, 100, {}}});
  c.seq_len = 13;
  c.mem_len = 2;
  const GridCase gc{case_id(c) + "-s1", c, 1};
  const Tolerance tol = resolve_tolerance(DType::fp32, {}, {});
  Results results;
  for (const char* name : {"fp32-angles", "packed-positions-continue"})
    results.records.push_back(evaluate_one(*make_builtin(name), gc, DType::fp32, tol));
  return results;
}

}  // namespace

TEST_CASE("HTML: a Packed batches section with a cell per sequence and the failing ones", "[html]") {
  const std::string html = report_test::render<HtmlReporter>(packed_results());
  CHECK_THAT(html, Contains("<section id=\"packed\">"));
  CHECK_THAT(html, Contains("D16-N13-M2-pack6_4+2_3o100-s1"));
  CHECK_THAT(html, Contains("title=\"sequence 2: N = 3, M = 0, first position 100;"));
  CHECK_THAT(html, Contains("<td>none</td>"));
  CHECK_THAT(html, Contains("2 of 3 (1, 2); sequence 1 (N = 4, M = 2, rows from 6)"));
}

TEST_CASE("JUnit: one testcase per packed batch and dtype, naming the failing sequences", "[junit]") {
  const std::string xml = report_test::render<JUnitReporter>(packed_results());
  CHECK_THAT(xml, Contains("tests=\"2\""));
  CHECK_THAT(xml, Contains("2 of 3 sequences fail; sequence 1 of 3 (N = 4, M = 2, positions -2..3)"));
}

TEST_CASE("a packed batch's verdicts survive the results file, and a forged one is refused", "[results]") {
  const Results written = packed_results();
  xposcheck::testing::TempDir dir;
  const auto file = dir.path / "packed.json";
  write_results(file, written);
  const Results read = read_results(file);
  REQUIRE(read.records.size() == 2);
  const Record& r = read.records[1];
  REQUIRE(r.packed);
  REQUIRE(r.packed->sequences.size() == 3);
  CHECK(r.packed->failing == std::vector<long>{1, 2});
  CHECK(r.packed->sequences[1].first_key_row == 6);
  CHECK(r.packed->sequences[2].first_position == 100);
  CHECK(r.packed->sequences[0].outcome == Outcome::pass);
  CHECK(r.packed->sequences[1].message == written.records[1].packed->sequences[1].message);
  CHECK(r.params.packed->sequences == written.records[1].params.packed->sequences);
  std::ifstream in(file);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  const auto at = text.find("\"failing\":");
  REQUIRE(at != std::string::npos);
  const std::string forged = text.replace(text.find("2]", at), 2, "7]");
  std::ofstream(file, std::ios::trunc) << forged;
  CHECK_THROWS_WITH(read_results(file), Contains("not one of the 3 sequences"));
}
