// JUnit XML from the fixed results: one testcase per record, counts that agree at
// every level, failures for the gate's failures, errors for CRASH/TIMEOUT, skipped
// for OUT_OF_RANGE, and escaped, XML 1.0-clean text.
#include <catch2/catch.hpp>
#include <regex>

#include "report_test_support.hpp"
#include "xposcheck/reports/junit_reporter.hpp"
#include "xposcheck/reports/summary.hpp"

using namespace xposcheck;
using namespace report_test;
using namespace std::string_literals;

namespace {

struct Counts {
  std::size_t tests = 0, failures = 0, errors = 0, skipped = 0;
};

std::size_t attribute(const std::string& tag, const std::string& name) {
  std::smatch m;
  const std::regex re(" " + name + "=\"([0-9]+)\"");
  REQUIRE(std::regex_search(tag, m, re));
  return std::stoul(m[1]);
}

Counts declared(const std::string& tag) {
  return {attribute(tag, "tests"), attribute(tag, "failures"), attribute(tag, "errors"), attribute(tag, "skipped")};
}

Counts counted(const std::string& body) {
  return {count(body, "<testcase "), count(body, "<failure "), count(body, "<error "), count(body, "<skipped ")};
}

void require_equal(const Counts& a, const Counts& b) {
  CHECK(a.tests == b.tests);
  CHECK(a.failures == b.failures);
  CHECK(a.errors == b.errors);
  CHECK(a.skipped == b.skipped);
}

}  // namespace

TEST_CASE("JUnit: one testcase per record and counts consistent at every level", "[junit]") {
  const std::string xml = render<JUnitReporter>(fixture());
  REQUIRE(xml.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites ", 0) == 0);
  const std::string top = xml.substr(xml.find("<testsuites "), xml.find('>', xml.find("<testsuites ")) - xml.find("<testsuites "));
  const Counts total = declared(top);
  CHECK(total.tests == 72);
  CHECK(total.failures == 33);  // DIM_MISMATCH 8, TOLERANCE 22, NONFINITE 1, DRIFT 1, and an
                                // OUT_OF_RANGE whose representable part is NONFINITE
  CHECK(total.errors == 2);     // CRASH and TIMEOUT
  CHECK(total.skipped == 3);    // OUT_OF_RANGE that is right where fp16 holds it
  require_equal(total, counted(xml));

  SummaryTable summary;
  for (const Record& r : fixture().records) summary.record(r);
  CHECK(total.tests == fixture().records.size());
  CHECK(total.failures + total.errors == summary.failures());

  // Each <testsuite> declares what it holds.
  std::size_t suites = 0;
  for (std::size_t at = xml.find("<testsuite "); at != std::string::npos; at = xml.find("<testsuite ", at + 1)) {
    const std::size_t end = xml.find("</testsuite>", at);
    REQUIRE(end != std::string::npos);
    const std::string tag = xml.substr(at, xml.find('>', at) - at);
    require_equal(declared(tag), counted(xml.substr(at, end - at)));
    ++suites;
  }
  CHECK(suites == 8);
  CHECK(count(xml, "</testcase>") + count(xml, "\"/>\n") >= 72);
}

TEST_CASE("JUnit: classname and name, failure types and evidence", "[junit]") {
  const std::string xml = render<JUnitReporter>(fixture());
  CHECK(count(xml, "classname=\"xposcheck.wrong-layout.fp32\"") == 9);
  CHECK(count(xml, "<testsuite name=\"xposcheck.unsliced-scale.fp16\" tests=\"9\" failures=\"4\" errors=\"0\" skipped=\"1\"") == 1);
  CHECK(xml.find("<testcase classname=\"xposcheck.unsliced-scale.fp32\" name=\"D16-N7-M100-s1\"") != std::string::npos);
  CHECK(count(xml, "type=\"DIM_MISMATCH\"") == 8);
  CHECK(count(xml, "type=\"TOLERANCE\"") == 22);
  CHECK(count(xml, "<error message=\"CRASH: candidate raised RuntimeError ...\" type=\"CRASH\">") == 1);
  CHECK(count(xml, "<error message=\"TIMEOUT: no outputs within the time limit of 30 s\" type=\"TIMEOUT\">") == 1);
  CHECK(count(xml, "<skipped message=\"OUT_OF_RANGE: ") == 3);
  // Evidence: shapes and their relation, the worst element, the first non-finite one.
  CHECK(xml.find("sizes: 7 = N, 107 = M + N") != std::string::npos);
  CHECK(std::regex_search(xml, std::regex("beyond tolerance; worst [0-9.e+]+ ulps \\(allowed [0-9.]+, err/tol [0-9.e+]+\\) at batch 0 head 0 row [0-9]+ feature [0-9]+ \\(position -?[0-9]+")));
  CHECK(xml.find("q_out: 3 non-finite of 528; first at batch 0 head 0 row 5 feature 2 (position 5, pair 2); got nan") != std::string::npos);
}

TEST_CASE("JUnit: OUT_OF_RANGE becomes a failure when the gate counts it", "[junit]") {
  const std::string xml = render_under<JUnitReporter>(
      fixture(), gate_verdict(fixture(), GatePolicy{.out_of_range_fails = true}));
  const Counts total = declared(xml.substr(xml.find("<testsuites "), 200));
  CHECK(total.failures == 36);
  CHECK(total.skipped == 0);
  CHECK(count(xml, "type=\"OUT_OF_RANGE\"") == 4);
}

TEST_CASE("JUnit: hostile text is escaped and stripped to XML 1.0 characters", "[junit][escape]") {
  const std::string xml = render<JUnitReporter>(fixture());
  CHECK(xml.find(kHostile) == std::string::npos);
  CHECK(count(xml, std::string("classname=\"xposcheck.") + kHostileEscaped + ".fp32\"") == 9);
  CHECK(xml.find("<img") == std::string::npos);
  CHECK(xml.find("&lt;/pre&gt;&lt;img src=x onerror=alert(2)&gt; &amp; [31m ]]&gt; &#39;q&#39;") != std::string::npos);
  CHECK(xml_clean(xml));  // the fixture's \x01 and ESC are gone

  Results bad = fixture();
  bad.records.resize(1);
  bad.records[0].outcome = Outcome::crash;
  bad.records[0].case_id = "case \"1\" & <2>";
  bad.records[0].message = "bad bytes \xff\xfe, NUL \0 and BEL \a, overlong \xc0\xaf, "s +
                           "surrogate \xed\xa0\x80, fine \xc3\xa9 \xe2\x82\xac";
  const std::string out = render<JUnitReporter>(bad);
  CHECK(xml_clean(out));
  CHECK(out.find("name=\"case &quot;1&quot; &amp; &lt;2&gt;\"") != std::string::npos);
  CHECK(out.find("fine \xc3\xa9 \xe2\x82\xac") != std::string::npos);  // valid UTF-8 kept
  CHECK(out.find("bad bytes \xef\xbf\xbd\xef\xbf\xbd, NUL  and BEL ,") != std::string::npos);
}
