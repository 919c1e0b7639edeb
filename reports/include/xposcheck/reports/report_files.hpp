#pragma once
// Writes the HTML report, JUnit XML and Markdown summary of one set of results to
// files, as `xposcheck report` and `xposcheck sweep --report/--junit/--summary` do.
#include <filesystem>
#include <stdexcept>

#include "xposcheck/harness/results.hpp"

namespace xposcheck {

struct ReportFiles {
  std::filesystem::path html, junit, markdown;  // empty: not written
  bool empty() const { return html.empty() && junit.empty() && markdown.empty(); }
};

struct ReportFileError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Each file is written atomically (write_atomically); throws
// ReportFileError naming the file that could not be written.
void write_report_files(const Results& results, const ReportFiles& files,
                        const GateVerdict& verdict);

}  // namespace xposcheck
