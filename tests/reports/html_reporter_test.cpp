// The HTML report of the fixed results: every part present (overview, heatmaps,
// curves, failure table with evidence, run metadata), every failing case listed,
// hostile text escaped, nothing fetched from the network.
#include <catch2/catch.hpp>
#include <regex>

#include "report_test_support.hpp"
#include "xposcheck/reports/html_reporter.hpp"

using namespace xposcheck;
using namespace report_test;

namespace {

const std::string& page() {
  static const std::string html = render<HtmlReporter>(fixture());
  return html;
}

}  // namespace

TEST_CASE("HTML: one self-contained page with every section", "[html]") {
  const std::string& html = page();
  CHECK(html.rfind("<!DOCTYPE html>\n<html lang=\"en\">", 0) == 0);
  CHECK(html.size() > 100000);
  CHECK(html.size() < 1000000);
  for (const char* id : {"id=\"overview\"", "id=\"accuracy\"", "id=\"counts\"", "id=\"envelope\"", "id=\"legend\"",
                         "id=\"curves\"", "id=\"failures\"", "id=\"run\"", "id=\"tolerance\""}) {
    CHECK(count(html, id) == 1);
  }
  // 34 failures, and the OUT_OF_RANGE whose representable part is NONFINITE.
  CHECK(html.find("gate FAIL: 35 failing of 72") != std::string::npos);
  // Inline style and one inline script only; nothing loaded from elsewhere.
  CHECK(count(html, "<script") == 1);
  CHECK(count(html, "<style>") == 1);
  for (const char* remote : {"<link", "<img", "<iframe", "@import", "http://", "https://", " src=\"", "url(http"}) {
    CHECK(html.find(remote) == std::string::npos);
  }
}

TEST_CASE("HTML: overview in Boost.Math style, counts and gate per candidate and dtype", "[html]") {
  const std::string& html = page();
  CHECK(count(html, "<span class=\"max\">max ") == 8);
  CHECK(html.find("<td>2.166e+11</td>") != std::string::npos);  // wrong-layout fp32 worst ulps
  CHECK(html.find("<span class=\"pill bad\">4 DIM_MISMATCH</span>") != std::string::npos);
  CHECK(count(html, "<td class=\"l gate-fail\">FAIL</td>") == 6);
  CHECK(count(html, "<td class=\"l gate-ok\">ok</td>") == 2);
}

TEST_CASE("HTML: heatmaps per candidate and dtype, small multiples per combination", "[html]") {
  const std::string& html = page();
  // 8 worst-over heatmaps plus 3 combinations (half, interleaved, c=6000) x 2 dtypes x 4.
  CHECK(count(html, "<svg class=\"heatmap\"") == 32);
  CHECK(html.find("fp16 · worst over layout, c") != std::string::npos);
  CHECK(html.find("layout=half · c=6000") != std::string::npos);
  // OUT_OF_RANGE: fp16 of 4 candidates, in the worst-over and the split heatmaps, and the legend.
  CHECK(count(html, "fill=\"url(#xpc-hatch)\"") == 2 * 4 + 1);
  CHECK(count(html, "<pattern id=\"xpc-hatch\"") == 1);
  // Red cells: DIM_MISMATCH (4 worst-over, 8 split), CRASH and TIMEOUT (2 + 2), NONFINITE (1 + 1).
  CHECK(count(html, "<g class=\"cell bad\">") == 18);
  CHECK(html.find("<title>unsliced-scale · fp32 · D16-N7-M100-s1\nDIM_MISMATCH") != std::string::npos);
  CHECK(html.find("(worst of 2 cases at N=7, M=100)") != std::string::npos);
}

TEST_CASE("HTML: error curves for failing and worst cases, capped", "[html]") {
  const std::string& html = page();
  CHECK(count(html, "<svg class=\"curve-plot\"") == 24);
  CHECK(html.find("<h3>Failing cases (18)</h3>") != std::string::npos);
  CHECK(html.find("<h3>Worst passing cases (6)</h3>") != std::string::npos);
  CHECK(count(html, "stroke-dasharray=\"5 3\"") >= 24);  // tolerance lines
  CHECK(html.find(">1e") != std::string::npos);           // decade ticks of the log scale

  const std::string four = render<HtmlReporter>(fixture(), HtmlOptions{.max_curves = 4});
  CHECK(count(four, "<svg class=\"curve-plot\"") == 4);
  CHECK(four.find("<h3>Worst passing cases (2)</h3>") != std::string::npos);
}

TEST_CASE("HTML: failure table lists every failing case with its evidence", "[html]") {
  const std::string& html = page();
  const std::string table = html.substr(html.find("id=\"failures\""));
  std::size_t listed = 0;
  for (const Record& r : fixture().records) {
    if (r.outcome == Outcome::pass) continue;
    ++listed;
    CHECK(table.find("<td class=\"l\">" + r.case_id + "</td>") != std::string::npos);
  }
  CHECK(listed == 38);
  CHECK(count(table, "<tr data-outcome=") == 38);
  CHECK(count(table, "data-gate=\"1\"") == 35);  // one OUT_OF_RANGE is wrong where fp16 holds it
  CHECK(count(table, "<tr data-outcome=\"OUT_OF_RANGE\" data-gate=\"0\">") == 3);
  CHECK(table.find("sizes: 7 = N, 107 = M + N") != std::string::npos);
  CHECK(table.find("q_out: 3 non-finite of 528; first at batch 0 head 0 row 5 feature 2") != std::string::npos);
  CHECK(table.find("q_out: 3 golden values beyond fp16 (largest |golden| 5.127e+06); the envelope is exceeded "
                   "from position 0\nrepresentable part of the outputs: PASS") != std::string::npos);
  CHECK(table.find("error grew 12x versus the baseline") != std::string::npos);
  CHECK(table.find("Traceback (most recent call last):\n  File &quot;&lt;candidate&gt;&quot;") != std::string::npos);
}

TEST_CASE("HTML: candidate text is escaped everywhere", "[html][escape]") {
  const std::string& html = page();
  CHECK(html.find(kHostile) == std::string::npos);
  CHECK(count(html, kHostileEscaped) > 20);
  CHECK(html.find("&lt;/pre&gt;&lt;img src=x onerror=alert(2)&gt; &amp; [31m ]]&gt; &#39;q&#39;") != std::string::npos);
  CHECK(html.find("</pre><img") == std::string::npos);
  CHECK(html.find("ci &quot;runner&quot; &lt;2 cores&gt; &amp; more") != std::string::npos);
  CHECK(xml_clean(html));
}

TEST_CASE("HTML: run metadata and the tolerance profile", "[html]") {
  const std::string& html = page();
  const std::string run = html.substr(html.find("<section id=\"run\">"));
  for (const char* fact : {"<dd>0.1.0</dd>", "<dd>0123456789ab</dd>", "<dd>report-fixture</dd>",
                           "<dd>tests/reports/data/fixture-grid.toml</dd>", "<dd>fp32, fp16</dd>",
                           "<dd>2026-01-02T03:04:05Z</dd>"}) {
    CHECK(run.find(fact) != std::string::npos);
  }
  CHECK(run.find("<tr><td class=\"l\">fp16</td><td class=\"l\">position-aware</td><td>4</td>") != std::string::npos);
  CHECK(run.find("<tr><td class=\"l\">fp32</td><td class=\"l\">position-aware</td><td>8</td>") != std::string::npos);
}

TEST_CASE("HTML: an empty results file still makes a page", "[html]") {
  Results empty;
  empty.run.grid_name = "empty";
  const std::string html = render<HtmlReporter>(empty);
  CHECK(html.find("gate PASS: 0 failing of 0") != std::string::npos);
  CHECK(html.find("No results.") != std::string::npos);
  CHECK(html.find("</html>") != std::string::npos);
}

TEST_CASE("HTML: a huge traceback is cut, its first line kept in bold", "[html]") {
  Results r = fixture();
  r.records.resize(1);
  r.records[0].outcome = Outcome::crash;
  r.records[0].tensors.clear();
  r.records[0].message = "candidate raised MemoryError";
  for (int i = 0; i < 2000; ++i) r.records[0].message += "\n  File \"model.py\", line " + std::to_string(i);
  const std::string html = render<HtmlReporter>(r);
  const std::size_t row = html.find("<tr data-outcome=\"CRASH\"");
  REQUIRE(row != std::string::npos);
  const std::string cell = html.substr(row, html.find("</tr>", row) - row);
  CHECK(cell.find("<pre><b>candidate raised MemoryError</b>\n  File &quot;model.py&quot;, line 0\n") != std::string::npos);
  CHECK(cell.find("(cut here; the results file has it all)</pre>") != std::string::npos);
  CHECK(cell.find("line 1999") == std::string::npos);
  CHECK(cell.size() < 12000);
  CHECK(cell.find("<td data-v=\"-1\">-</td><td data-v=\"-1\">-</td>") != std::string::npos);
}

TEST_CASE("HTML: the envelope section states each candidate's accuracy horizon per dtype", "[html][horizon]") {
  Results results = fixture();
  for (Record& r : results.records) {
    r.horizon.emplace();
    r.horizon->threshold = 0x1p-8;
    r.horizon->reach = 100;
    if (r.candidate != "wrong-layout" || r.dtype != DType::fp16) continue;
    r.horizon->near = 1;
    r.horizon->far = 2;
    r.horizon->tensor = "k_out";
  }
  const std::string html = render<HtmlReporter>(results);
  const auto envelope = html.find("<section id=\"envelope\">");
  REQUIRE(envelope != std::string::npos);
  const std::string section = html.substr(envelope, html.find("</section>", envelope) - envelope);
  CHECK(count(section, "<ul class=\"horizon\"") == 4);
  CHECK(count(section, "<li><b>fp16</b>: ") == 4);
  CHECK(section.find("<li><b>fp32</b>: no horizon within the grid (error &lt;= 2^-8 up to position 100)</li>") !=
        std::string::npos);
  CHECK(section.find("<li><b>fp16</b>: error &gt; 2^-8 beyond position ~1 (first exceeded at |p| 1..2 of k_out in D") !=
        std::string::npos);
  // Without horizons (older results) the section has none.
  CHECK(page().find("class=\"horizon\"") == std::string::npos);
}
