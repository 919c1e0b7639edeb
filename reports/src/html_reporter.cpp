#include "xposcheck/reports/html_reporter.hpp"

#include "html_parts.hpp"
#include "xposcheck/reports/summary.hpp"

namespace xposcheck {

HtmlReporter::HtmlReporter(std::ostream& out, HtmlOptions options) : out_(out), options_(options) {}

void HtmlReporter::begin(const RunInfo& run, const GateVerdict& verdict) {
  run_ = run;
  verdict_ = verdict;
  records_.clear();
}

void HtmlReporter::record(const Record& record) { records_.push_back(record); }

void HtmlReporter::end() {
  SummaryTable summary(verdict_.policy);
  for (const Record& r : records_) summary.record(r);
  const html::Page page{run_, records_, summary, options_, verdict_};
  std::string out;
  out.reserve(1 << 20);
  html::head(out, page);
  html::overview(out, page);
  html::heatmaps(out, page);
  html::curves(out, page);
  html::streams(out, page);
  html::packed_batches(out, page);
  html::failures(out, page);
  html::run_info(out, page);
  html::tail(out);
  out_ << out;
}

}  // namespace xposcheck
