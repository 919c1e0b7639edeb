// The Markdown summary of the fixed results: exactly one table row per candidate and
// dtype with its counts and gate, then the first failures, all cells escaped.
#include <catch2/catch.hpp>
#include <set>
#include <vector>

#include "report_test_support.hpp"
#include "xposcheck/reports/markdown_reporter.hpp"

using namespace xposcheck;
using namespace report_test;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The rows of the table whose header starts with `header`.
std::vector<std::string> table_rows(const std::string& text, const std::string& header) {
  const auto lines = lines_of(text);
  std::vector<std::string> rows;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].rfind(header, 0) != 0) continue;
    for (std::size_t k = i + 2; k < lines.size() && lines[k].rfind("| ", 0) == 0; ++k) rows.push_back(lines[k]);
    break;
  }
  return rows;
}

// Cell separators: pipes not escaped with a backslash.
std::size_t separators(const std::string& row) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < row.size(); ++i) n += row[i] == '|' && (i == 0 || row[i - 1] != '\\');
  return n;
}

}  // namespace

TEST_CASE("Markdown: exactly one table row per candidate and dtype", "[markdown]") {
  const std::string md = render<MarkdownReporter>(fixture());
  CHECK(md.rfind("### xposcheck: gate FAIL (35 failing of 72)\n", 0) == 0);
  const auto rows = table_rows(md, "| candidate | dtype | PASS |");
  REQUIRE(rows.size() == 8);
  std::set<std::string> keys;
  for (const std::string& row : rows) {
    const std::size_t a = row.find(" | "), b = row.find(" | ", a + 3);
    keys.insert(row.substr(2, a - 2) + "/" + row.substr(a + 3, b - a - 3));
    CHECK(separators(row) == 15);  // 14 columns: 8 outcomes plus 6 others
  }
  CHECK(keys == std::set<std::string>{"&lt;script&gt;alert(1)&lt;/script&gt;/fp32", "&lt;script&gt;alert(1)&lt;/script&gt;/fp16",
                                      "fp32-angles/fp32", "fp32-angles/fp16", "unsliced-scale/fp32",
                                      "unsliced-scale/fp16", "wrong-layout/fp32", "wrong-layout/fp16"});
  CHECK(md.find("| candidate | dtype | PASS | DIM_MISMATCH | TOLERANCE | NONFINITE | OUT_OF_RANGE | CRASH | "
                "TIMEOUT | DRIFT | worst ulps | mean ulps | err/tol | gate |") != std::string::npos);
  CHECK(md.find("| unsliced-scale | fp16 | 4 | 4 | 0 | 0 | 1 | 0 | 0 | 0 | ") != std::string::npos);
  CHECK(md.find("| fp32-angles | fp32 | 9 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 15.05 | ") != std::string::npos);
  CHECK(count(md, "| **FAIL** |") == 6);
  CHECK(count(md, "| ok |") == 2);
}

TEST_CASE("Markdown: the first failures follow, escaped", "[markdown]") {
  const std::string md = render<MarkdownReporter>(fixture());
  CHECK(md.find("First 10 of 35 failures:") != std::string::npos);
  const auto rows = table_rows(md, "| candidate | dtype | case | outcome | message |");
  REQUIRE(rows.size() == 10);
  for (const std::string& row : rows) CHECK(separators(row) == 6);
  CHECK(rows[0] == "| &lt;script&gt;alert(1)&lt;/script&gt; | fp32 | D16-N7-s1 | TIMEOUT | no outputs within the time limit of 30 s |");
  CHECK(md.find(kHostile) == std::string::npos);
  CHECK(md.find("<img") == std::string::npos);

  const std::string three = render<MarkdownReporter>(fixture(), MarkdownOptions{.max_failures = 3});
  CHECK(table_rows(three, "| candidate | dtype | case | outcome | message |").size() == 3);
}

TEST_CASE("Markdown: pipes, newlines and markup in a message stay inside one cell", "[markdown][escape]") {
  Results r = fixture();
  r.records.resize(1);
  r.records[0].outcome = Outcome::crash;
  r.records[0].message = "a | b\nTraceback: <b>x</b> & [link](y) `code` *em* _u_ k_out";
  const std::string md = render<MarkdownReporter>(r);
  const auto rows = table_rows(md, "| candidate | dtype | case | outcome | message |");
  REQUIRE(rows.size() == 1);
  CHECK(separators(rows[0]) == 6);
  CHECK(rows[0].find("a \\| b Traceback: &lt;b&gt;x&lt;/b&gt; &amp; \\[link\\](y) \\`code\\` \\*em\\* \\_u\\_ k_out |") !=
        std::string::npos);
  CHECK(md.find("gate FAIL (1 failing of 1)") != std::string::npos);
}

namespace {

// The fixture with a horizon on every record: wrong-layout's first bin over 2^-8 at
// |p| 1..2, the others none up to position 100.
Results with_horizons() {
  Results results = fixture();
  for (Record& r : results.records) {
    r.horizon.emplace();
    r.horizon->threshold = 0x1p-8;
    r.horizon->reach = 100;
    if (r.candidate != "wrong-layout") continue;
    r.horizon->near = 1;
    r.horizon->far = 2;
    r.horizon->tensor = "q_out";
  }
  return results;
}

}  // namespace

TEST_CASE("Markdown: the accuracy horizon of each candidate and dtype", "[markdown][horizon]") {
  const std::string md = render<MarkdownReporter>(with_horizons());
  // Cells are escaped as everywhere in the summary: "<", ">" and "|" too.
  CHECK_THAT(md, Catch::Contains("Accuracy horizon"));
  CHECK_THAT(md, Catch::Contains("- fp32-angles fp32: no horizon within the grid (error &lt;= 2^-8 up to position 100)\n"));
  CHECK_THAT(md, Catch::Contains("- wrong-layout fp16: error &gt; 2^-8 beyond position ~1 (first exceeded at \\|p\\| 1..2 of "
                                 "q_out in D"));
  CHECK(count(md, "\n- ") == 8);
  // Results of an older version hold no horizons: no such section.
  CHECK(render<MarkdownReporter>(fixture()).find("Accuracy horizon") == std::string::npos);
}
