// `xposcheck report` and `xposcheck sweep --report/--junit/--summary`: files written,
// exit 0 without gating; unreadable results and unwritable outputs exit 2 naming
// the file.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "report_test_support.hpp"

using namespace report_test;
using Catch::Matchers::Contains;

namespace {

std::string at(const TempDir& dir, const char* name) { return (dir / name).string(); }

}  // namespace

TEST_CASE("report: writes the HTML, JUnit and Markdown files and exits 0 although the gate fails", "[cli]") {
  TempDir dir;
  const Run r = run_cli(dir, {"report", kFixture.string(), "-o", at(dir, "out/report.html"), "--junit",
                             at(dir, "junit.xml"), "--summary", at(dir, "summary.md")});
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Contains(fmt::format("html: {}", at(dir, "out/report.html"))));
  CHECK_THAT(r.out, Contains("72 results; the gate would FAIL (35 failing)"));
  const std::string html = slurp(dir / "out/report.html");
  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(html.find("</html>") != std::string::npos);
  CHECK(count(slurp(dir / "junit.xml"), "<testcase ") == 72);
  CHECK(slurp(dir / "summary.md").rfind("### xposcheck: gate FAIL (35 failing of 72)", 0) == 0);
  CHECK_FALSE(fs::exists(dir / "junit.xml.tmp"));

  const Run strict = run_cli(dir, {"report", kFixture.string(), "--junit", at(dir, "strict.xml"), "--fail-on-out-of-range"});
  CHECK(strict.status == 0);
  CHECK_THAT(strict.out, Contains("the gate would FAIL (38 failing)"));
  CHECK(count(slurp(dir / "strict.xml"), "<skipped ") == 0);
}

TEST_CASE("report: unreadable or corrupt results exit 2 naming the file", "[cli][errors]") {
  TempDir dir;
  const fs::path missing = dir / "missing.json", garbage = dir / "garbage.json", other = dir / "other.json",
                 cut = dir / "cut.json";
  std::ofstream(garbage) << "{ this is not json";
  std::ofstream(other) << R"({"schema": "something-else", "records": []})";
  const std::string fixture_text = slurp(kFixture);
  std::ofstream(cut) << fixture_text.substr(0, fixture_text.size() / 2);
  const std::pair<fs::path, const char*> cases[] = {{missing, "cannot open results file"},
                                                    {garbage, "not valid JSON"},
                                                    {other, "not an xposcheck results file"},
                                                    {cut, "not valid JSON"}};
  for (const auto& [file, why] : cases) {
    const Run r = run_cli(dir, {"report", file.string(), "-o", at(dir, "r.html")});
    INFO(file << ": " << r.err);
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Contains(file.string()) && Contains(why));
    CHECK_FALSE(fs::exists(dir / "r.html"));
  }
}

TEST_CASE("report: no output named, or one that cannot be written, exits 2", "[cli][errors]") {
  TempDir dir;
  const Run none = run_cli(dir, {"report", kFixture.string()});
  CHECK(none.status == 2);
  CHECK_THAT(none.err, Contains("name an output"));

  std::ofstream(dir / "a-file") << "x";
  const fs::path blocked = dir / "a-file/report.html";  // a path under a regular file
  const Run r = run_cli(dir, {"report", kFixture.string(), "-o", blocked.string()});
  CHECK(r.status == 2);
  CHECK_THAT(r.err, Contains(blocked.string()) && Contains("cannot write report file"));

  const Run missing_arg = run_cli(dir, {"report", "-o", at(dir, "r.html")});
  CHECK(missing_arg.status == 2);
  CHECK_THAT(missing_arg.err, Contains("results"));
}

TEST_CASE("sweep --report --junit --summary writes the reports of the same results", "[cli]") {
  TempDir dir;
  const Run r = run_cli(dir, {"sweep", "--grid", XPOSCHECK_SOURCE_DIR "/cases/smoke.toml", "--candidate", "wrong-layout",
                             "--dtypes", "fp32", "--jobs", "1", "--quiet", "--out", at(dir, "r.json"), "--report",
                             at(dir, "r.html"), "--junit", at(dir, "r.xml"), "--summary", at(dir, "r.md")});
  INFO(r.err);
  CHECK(r.status == 1);  // the gate: wrong-layout fails
  CHECK_THAT(r.out, Contains(fmt::format("report: {}", at(dir, "r.html"))));
  const std::string xml = slurp(dir / "r.xml");
  CHECK(count(xml, "<testcase ") == 30);
  CHECK(count(xml, "classname=\"xposcheck.wrong-layout.fp32\"") == 30);
  CHECK(count(xml, "<failure ") + count(xml, "<error ") > 0);
  CHECK(slurp(dir / "r.md").find("| wrong-layout | fp32 |") != std::string::npos);
  CHECK(slurp(dir / "r.html").find("<svg class=\"heatmap\"") != std::string::npos);

  // The report command reproduces the sweep's report from the results file.
  const Run again = run_cli(dir, {"report", at(dir, "r.json"), "--junit", at(dir, "again.xml")});
  CHECK(again.status == 0);
  CHECK(slurp(dir / "again.xml") == xml);
}
