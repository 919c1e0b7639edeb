// Streams in the reports: the HTML Streams section with error versus step and the
// first failing step; JUnit one testcase per stream and dtype naming that step.
#include <catch2/catch.hpp>

#include "report_test_support.hpp"
#include "xposcheck/harness/builtin_candidates.hpp"
#include "xposcheck/harness/sweep.hpp"
#include "xposcheck/reports/html_reporter.hpp"
#include "xposcheck/reports/junit_reporter.hpp"

using namespace xposcheck;
using Catch::Matchers::Contains;

namespace {

Results stream_results() {
  Case c;
  c.head_dim = 16;
  c.mem_len = 3;
  c.stream = StreamShape{5, 2};
  c.seq_len = 5 + 4 * 2;
  const GridCase gc{case_id(c) + "-s1", c, 1};
  const Tolerance tol = resolve_tolerance(DType::fp32, {}, {});
  Results results;
  for (const char* name : {"fp32-angles", "positions-restart"})
    results.records.push_back(evaluate_one(*make_builtin(name), gc, DType::fp32, tol));
  return results;
}

}  // namespace

TEST_CASE("HTML: a Streams section with error versus step and the first failing step", "[html]") {
  const Results results = stream_results();
  const std::string html = report_test::render<HtmlReporter>(results);
  CHECK_THAT(html, Contains("<section id=\"streams\">"));
  CHECK_THAT(html, Contains("D16-N13-M3-stream5+4x2-s1"));
  // The correct candidate: no failing step, identical to its own one-call outputs.
  CHECK_THAT(html, Contains("<td>none</td><td>identical</td>"));
  // The lost offset: from the first step on.
  CHECK_THAT(html, Contains("step 1 of 4 (positions 5..6)"));
  CHECK_THAT(html, Contains("<polyline"));
}

TEST_CASE("HTML: no Streams section without streams", "[html]") {
  Results results = stream_results();
  for (Record& r : results.records) r.params.stream.reset();
  CHECK_THAT(report_test::render<HtmlReporter>(results), !Contains("<section id=\"streams\">"));
}

TEST_CASE("JUnit: one testcase per stream and dtype, its failure naming the step", "[junit]") {
  const std::string xml = report_test::render<JUnitReporter>(stream_results());
  CHECK_THAT(xml, Contains("tests=\"2\""));
  CHECK_THAT(xml, Contains("stream fails from step 1 (positions 5..6) of 4"));
}
