// Streams (docs/streams.md): per candidate and dtype, every stream with its error versus
// step (the largest error / allowed of each call's new rows and of its queries' logits
// against the cached keys), the first failing step and that step's evidence.
#include <algorithm>
#include <cmath>
#include <fmt/format.h>

#include "html_parts.hpp"
#include "text_escape.hpp"

namespace xposcheck::html {
namespace {

using text::markup;

constexpr double kWidth = 260, kHeight = 48, kPad = 3;

// log10 of err/tol from 1e-3 to 1e3, the tolerance line at 1.
double y_of(double ratio) {
  const double l = ratio > 0 && std::isfinite(ratio) ? std::clamp(std::log10(ratio), -3.0, 3.0)
                                                     : (ratio > 0 ? 3.0 : -3.0);
  return kPad + (3.0 - l) / 6.0 * (kHeight - 2 * kPad);
}

std::string sparkline(const StreamVerdict& v) {
  std::string points, marks;
  const double n = static_cast<double>(std::max<std::size_t>(2, v.steps.size()) - 1);
  for (std::size_t i = 0; i < v.steps.size(); ++i) {
    const StepVerdict& s = v.steps[i];
    const double x = kPad + static_cast<double>(i) / n * (kWidth - 2 * kPad);
    points += fmt::format("{}{:.1f},{:.1f}", points.empty() ? "" : " ", x, y_of(s.max_ratio()));
    if (s.fails())
      marks += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"1.8\" fill=\"#cb181d\"/>", x, y_of(s.max_ratio()));
  }
  return fmt::format(
      "<svg width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\"><title>err/tol per step, log scale "
      "1e-3..1e3; the line is the tolerance</title><line x1=\"0\" x2=\"{0}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\" "
      "stroke=\"#cb181d\" stroke-dasharray=\"3 2\" stroke-opacity=\"0.6\"/><polyline fill=\"none\" "
      "stroke=\"#0969da\" stroke-width=\"1.2\" points=\"{3}\"/>{4}</svg>",
      kWidth, kHeight, y_of(1.0), points, marks);
}

std::string step_name(long step) { return step == 0 ? "prefill" : fmt::format("step {}", step); }

std::string first_failure(const StreamVerdict& v) {
  if (!v.first_failing_step) return "none";
  const StepVerdict& s = v.steps[static_cast<std::size_t>(*v.first_failing_step)];
  const std::string where = s.first_position == s.last_position
                                ? fmt::format("position {}", s.first_position)
                                : fmt::format("positions {}..{}", s.first_position, s.last_position);
  return fmt::format("{} of {} ({}): q {} · k {} · logits {}{}", step_name(s.step), v.steps.size() - 1,
                     where, num(s.q_ratio), num(s.k_ratio), num(s.logits_ratio),
                     s.nonfinite ? " · non-finite" : "");
}

std::string one_pass(const StreamVerdict& v) {
  if (!v.one_pass_difference) return "-";
  if (*v.one_pass_difference == 0) return "identical";
  return fmt::format("differs by {} from {}", num(*v.one_pass_difference),
                     step_name(v.one_pass_first_step.value_or(0)));
}

}  // namespace

void streams(std::string& out, const Page& page) {
  const auto rows = records_by_candidate(page, [](const Record& r) { return r.params.stream.has_value(); });
  if (rows.empty()) return;
  out += "<section id=\"streams\"><h2>Streams</h2>\n<p class=\"note\">Each stream runs as a decoder "
         "does: a prefill, then steps with only their new rows, the keys the candidate returned kept "
         "as the cache. Per step: the largest error / allowed of its new queries and keys and of its "
         "queries' logits against every cached key (log scale, the dashed line is the tolerance, red "
         "dots fail). One pass: the stream's outputs against the candidate's own outputs for the "
         "whole case in one call (largest difference relative to the row).</p>\n"
         "<table class=\"streams\"><tr><th>candidate</th><th>dtype</th><th>case</th><th>outcome</th>"
         "<th>err/tol per step</th><th>first failing step</th><th>one pass</th></tr>\n";
  for (const Record* r : rows) {
    out += record_row_start(*r);
    if (!r->stream) {
      out += fmt::format("<td colspan=\"3\">{}</td></tr>\n", markup(r->message));
      continue;
    }
    out += fmt::format("<td>{}</td><td>{}</td><td>{}</td></tr>\n", sparkline(*r->stream),
                       markup(first_failure(*r->stream)), markup(one_pass(*r->stream)));
  }
  out += "</table></section>\n";
}

}  // namespace xposcheck::html
