// The report in a real browser: headless Chromium loads the fixture's report with no
// console errors, the script attaches the sorter and filters, heatmaps and curves are
// rendered and the first screen is not blank (scripts/browser-check does the looking).
// Skips with a WARN where /usr/bin/chromium is absent; scripts/bootstrap installs it.
#include <catch2/catch.hpp>

#include "report_test_support.hpp"
#include "xposcheck/reports/html_reporter.hpp"

using namespace xposcheck;
using namespace report_test;

namespace {

constexpr int kSkipped = 77;

Run browser_check(const TempDir& dir, const fs::path& html, std::initializer_list<std::string> options) {
  std::string cmd = command_line({XPOSCHECK_SOURCE_DIR "/scripts/browser-check", html.string()});
  cmd += ' ';
  cmd += command_line(options);
  return run(dir, cmd);
}

}  // namespace

TEST_CASE("browser: Chromium renders the report without errors and it is not blank", "[browser]") {
  TempDir dir;
  const fs::path html = dir / "report.html", shot = dir / "report.png";
  std::ofstream(html) << render<HtmlReporter>(fixture());
  const Run r = browser_check(dir, html, {"--screenshot", shot.string(), "--min-heatmaps", "32", "--min-curves", "24"});
  if (r.status == kSkipped) {
    WARN(r.out);
    return;
  }
  INFO(r.out << r.err);
  CHECK(r.status == 0);
  CHECK_THAT(r.out, Catch::Matchers::Contains("32 heatmaps, 24 curve plots, 0 console messages"));
  CHECK(fs::file_size(shot) > 50000);
}

TEST_CASE("browser: the check catches a script error", "[browser]") {
  TempDir dir;
  std::string page = render<HtmlReporter>(fixture());
  const std::string ready = "table.setAttribute('data-ready', '1');";
  REQUIRE(page.find(ready) != std::string::npos);
  page.replace(page.find(ready), ready.size(), "noSuchFunction();");
  const fs::path html = dir / "broken.html";
  std::ofstream(html) << page;
  const Run r = browser_check(dir, html, {"--min-heatmaps", "32"});
  if (r.status == kSkipped) {
    WARN(r.out);
    return;
  }
  INFO(r.out << r.err);
  CHECK(r.status == 1);
  CHECK_THAT(r.out, Catch::Matchers::Contains("Uncaught ReferenceError: noSuchFunction is not defined"));
  CHECK_THAT(r.out, Catch::Matchers::Contains("not marked data-ready"));
}
