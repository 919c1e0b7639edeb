#pragma once
// The HTML accuracy report: one self-contained page (inline CSS and SVG, a little
// inline JS, nothing fetched) with the overview table, the safe-envelope heatmaps,
// error-versus-position curves, the failure table and the run metadata
// (docs/reports.md shows and explains each part).
#include <cstddef>
#include <ostream>
#include <vector>

#include "xposcheck/reports/reporter.hpp"

namespace xposcheck {

struct HtmlOptions {
  std::size_t max_curves = 24;         // error curves drawn (worst and failing cases)
  std::size_t max_failure_rows = 5000; // failure table rows; the rest are counted
};

class HtmlReporter : public Reporter {
 public:
  explicit HtmlReporter(std::ostream& out, HtmlOptions options = {});
  void begin(const RunInfo& run, const GateVerdict& verdict) override;
  void record(const Record& record) override;
  // Writes the page: every part needs every record (the heatmaps span the grid).
  void end() override;

 private:
  std::ostream& out_;
  HtmlOptions options_;
  RunInfo run_;
  GateVerdict verdict_;
  std::vector<Record> records_;
};

}  // namespace xposcheck
