#include "evidence.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace xposcheck::evidence {
namespace {

std::string element_values(const ElementRef& e) {
  return fmt::format("got {} want {}", number(e.got), number(e.want));
}

void shape_lines(const Record& r, std::vector<std::string>& out) {
  if (!r.shape) return;
  const ShapeIssue& s = *r.shape;
  if (s.what == "exception") {
    out.push_back(s.tensor.empty() ? std::string("raised inside the candidate, before it returned outputs")
                                   : fmt::format("{}: raised inside the candidate", s.tensor));
  } else {
    out.push_back(fmt::format("{}: expected {} {}, got {}", s.tensor, s.what, s.expected, s.actual));
  }
  if (!s.relation.empty()) out.push_back("sizes: " + s.relation);
}

void tolerance_lines(const Record& r, std::vector<std::string>& out) {
  for (const TensorStats& t : r.tensors) {
    if (!t.compared || t.over_tolerance == 0) continue;
    out.push_back(fmt::format("{}: {} of {} beyond tolerance; worst {} ulps (allowed {}, err/tol {}) "
                              "at {}; {}", t.name, t.over_tolerance, t.elements,
                              number(t.worst.error_ulps), number(t.worst.allowed_ulps),
                              number(t.max_ratio), where(t.worst), element_values(t.worst)));
  }
}

void nonfinite_lines(const Record& r, std::vector<std::string>& out) {
  for (const TensorStats& t : r.tensors) {
    if (t.nonfinite == 0) continue;
    std::string line = fmt::format("{}: {} non-finite of {}", t.name, t.nonfinite, t.elements);
    if (t.first_nonfinite) {
      line += fmt::format("; first at {}; {}", where(*t.first_nonfinite),
                          element_values(*t.first_nonfinite));
    }
    out.push_back(line);
  }
}

void range_lines(const Record& r, std::vector<std::string>& out) {
  if (!r.range) return;
  const RangeIssue& g = *r.range;
  out.push_back(fmt::format("{}: {} golden values beyond {} (largest |golden| {}); the envelope "
                            "is exceeded from position {}", g.tensor.empty() ? "output" : g.tensor,
                            g.count, dtype_name(r.dtype), number(g.largest_golden),
                            g.first_position));
  if (!g.in_range_outcome.empty()) {
    out.push_back("representable part of the outputs: " + g.in_range_outcome);
  }
}

void pass_lines(const Record& r, std::vector<std::string>& out) {
  for (const TensorStats& t : r.tensors) {
    if (!t.compared) continue;
    out.push_back(fmt::format("{}: max {} ulps, mean {} ulps, err/tol {}", t.name,
                              number(t.max_ulps), number(t.mean_ulps), number(t.max_ratio)));
  }
  if (r.max_ratio > 0) out.push_back(fmt::format("margin {}x", number(1.0 / r.max_ratio)));
}

}  // namespace

std::string number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == 0) return "0";
  return fmt::format("{:.4g}", v);
}

std::string where(const ElementRef& e) {
  std::string s = fmt::format("batch {} head {} row {} feature {} (position {}", e.batch, e.head,
                              e.row, e.feature, e.position);
  if (e.pair >= 0) s += fmt::format(", pair {}", e.pair);
  return s + ")";
}

double worst_ulps(const Record& r) {
  double worst = 0;
  for (const TensorStats& t : r.tensors) {
    if (t.compared) worst = std::max(worst, t.max_ulps);
  }
  return worst;
}

std::vector<std::string> lines(const Record& r) {
  std::vector<std::string> out;
  switch (r.outcome) {
    case Outcome::pass: pass_lines(r, out); break;
    case Outcome::dim_mismatch: shape_lines(r, out); break;
    case Outcome::tolerance: tolerance_lines(r, out); break;
    case Outcome::nonfinite: nonfinite_lines(r, out); break;
    case Outcome::out_of_range: range_lines(r, out); break;
    case Outcome::drift: pass_lines(r, out); break;
    case Outcome::crash: case Outcome::timeout: break;
  }
  // The message says why in the harness's words; crash and timeout messages carry the
  // exception text or traceback, kept whole.
  if (!r.message.empty()) out.insert(out.begin(), r.message);
  return out;
}

std::string text(const Record& r) {
  std::string s;
  for (const std::string& line : lines(r)) {
    if (!s.empty()) s += '\n';
    s += line;
  }
  return s;
}

}  // namespace xposcheck::evidence
