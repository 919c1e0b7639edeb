// The HTML failure table shows each failure's diagnosis beside its evidence.
#include <sstream>

#include <catch2/catch.hpp>

#include "xposcheck/harness/builtin_candidates.hpp"
#include "xposcheck/harness/sweep.hpp"
#include "xposcheck/reports/html_reporter.hpp"

using namespace xposcheck;
using Catch::Matchers::Contains;

namespace {

std::string render_html(const Results& results) {
  std::ostringstream out;
  HtmlReporter reporter(out);
  Reporter* reporters[] = {&reporter};
  report(results, reporters);
  return out.str();
}

}  // namespace

TEST_CASE("the HTML failure table shows the diagnosis under the message") {
  Case c;
  c.head_dim = 16;
  c.seq_len = 9;
  c.mem_len = 4;
  const GridCase gc{case_id(c) + "-s1", c, 1};
  const Tolerance tol = resolve_tolerance(DType::fp32, {}, {});
  Results results;
  results.records.push_back(evaluate_one(*make_builtin("positions-from-zero"), gc, DType::fp32, tol));
  REQUIRE(results.records[0].diagnosis);
  // Text from the candidate side is escaped like everything else in the cell.
  results.records[0].diagnosis->evidence += " <script>";
  const std::string html = render_html(results);
  CHECK_THAT(html, Contains("<b>diagnosis</b>: memory-offset-missing (bug): key positions "
                            "shifted by +4 (= M)"));
  CHECK_THAT(html, Contains("under SPEC") && Contains("&lt;script&gt;"));
  CHECK(html.find(" <script>") == std::string::npos);
}
