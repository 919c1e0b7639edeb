#include "xposcheck/reports/report_files.hpp"

#include <fmt/format.h>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include "xposcheck/reports/html_reporter.hpp"
#include "xposcheck/reports/junit_reporter.hpp"
#include "xposcheck/reports/markdown_reporter.hpp"
#include "xposcheck/reference/atomic_file.hpp"

namespace xposcheck {
namespace {

namespace fs = std::filesystem;

void write_report_file(const fs::path& file, const std::string& text) {
  std::error_code ec;
  if (file.has_parent_path()) fs::create_directories(file.parent_path(), ec);
  try {
    write_atomically(file, text);
  } catch (const FileWriteError& e) {
    throw ReportFileError(fmt::format("cannot write report file: {}", e.what()));
  }
}

}  // namespace

void write_report_files(const Results& results, const ReportFiles& files, const GateVerdict& verdict) {
  // Each reporter writes into memory; files are written only after every reporter has
  // finished, so a failing one leaves no half-written file behind.
  std::ostringstream html, junit, markdown;
  std::vector<std::unique_ptr<Reporter>> owned;
  std::vector<std::pair<const fs::path*, std::ostringstream*>> outputs;
  if (!files.html.empty()) {
    owned.push_back(std::make_unique<HtmlReporter>(html));
    outputs.emplace_back(&files.html, &html);
  }
  if (!files.junit.empty()) {
    owned.push_back(std::make_unique<JUnitReporter>(junit));
    outputs.emplace_back(&files.junit, &junit);
  }
  if (!files.markdown.empty()) {
    owned.push_back(std::make_unique<MarkdownReporter>(markdown));
    outputs.emplace_back(&files.markdown, &markdown);
  }
  std::vector<Reporter*> reporters;
  for (const auto& r : owned) reporters.push_back(r.get());
  report(results, reporters, verdict);
  for (const auto& [file, text] : outputs) write_report_file(*file, text->str());
}

}  // namespace xposcheck
