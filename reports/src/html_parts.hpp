#pragma once
// The parts of the HTML report, each appended to the page in turn by HtmlReporter.
// Every function escapes what it takes from the records or the run metadata.
#include <algorithm>
#include <string>
#include <vector>

#include "xposcheck/reports/html_reporter.hpp"
#include "xposcheck/reports/summary.hpp"

namespace xposcheck::html {

struct Page {
  const RunInfo& run;
  const std::vector<Record>& records;
  const SummaryTable& summary;
  const HtmlOptions& options;
  const GateVerdict& verdict;
};

void head(std::string& out, const Page& page);      // <head> with the CSS, the title, the banner
void overview(std::string& out, const Page& page);  // accuracy tables per candidate x dtype
void heatmaps(std::string& out, const Page& page);  // envelope heatmaps over seq_len x mem_len
void curves(std::string& out, const Page& page);    // error versus position, worst and failing
void streams(std::string& out, const Page& page);   // error versus step of every stream
void packed_batches(std::string& out, const Page& page);  // the verdict of every packed sequence
void failures(std::string& out, const Page& page);  // every non-PASS record with its evidence
void run_info(std::string& out, const Page& page);  // metadata and tolerance profile
void tail(std::string& out);                        // the inline script, closing tags

// Shared by the parts.
std::string fill_colour(const Record& r);          // heatmap cell fill for the outcome and error
std::string_view outcome_class(Outcome o);         // CSS class: "pass", "tol", "bad", "oor", "drift"
std::string num(double v);                         // compact number for tables ("149.7", "1.8e+08")
// The records `keep` selects, ordered by candidate then dtype (stable).
template <class Keep>
std::vector<const Record*> records_by_candidate(const Page& page, Keep keep) {
  std::vector<const Record*> rows;
  for (const Record& r : page.records)
    if (keep(r)) rows.push_back(&r);
  std::stable_sort(rows.begin(), rows.end(), [](const Record* a, const Record* b) {
    return a->candidate != b->candidate ? a->candidate < b->candidate : a->dtype < b->dtype;
  });
  return rows;
}
// "<tr><td>candidate</td><td>dtype</td><td>case</td><td>outcome pill</td>": how the
// sections with one row per record start it.
std::string record_row_start(const Record& r);

}  // namespace xposcheck::html
