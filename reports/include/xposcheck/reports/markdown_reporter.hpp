#pragma once
// A short Markdown summary for a CI job summary ($GITHUB_STEP_SUMMARY): one table
// row per candidate and dtype, the accuracy horizons, then the first failures.
#include <cstddef>
#include <ostream>
#include <vector>

#include "xposcheck/reports/summary.hpp"

namespace xposcheck {

struct MarkdownOptions {
  std::size_t max_failures = 10;  // failures listed after the table
};

class MarkdownReporter : public Reporter {
 public:
  explicit MarkdownReporter(std::ostream& out, MarkdownOptions options = {});
  void begin(const RunInfo& run, const GateVerdict& verdict) override;
  void record(const Record& record) override;
  void end() override;

 private:
  std::ostream& out_;
  MarkdownOptions options_;
  RunInfo run_;
  GateVerdict verdict_;
  SummaryTable summary_;
  std::vector<Record> failures_;  // the first max_failures gate failures, in order
  HorizonTable horizons_;         // the accuracy horizon of each candidate and dtype
};

}  // namespace xposcheck
