// Error-versus-position curves: for the failing cases and the worst passing case of
// each candidate and dtype, the largest error per position bin of each tensor against
// its tolerance line, on a log scale.
#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <map>

#include "html_parts.hpp"
#include "text_escape.hpp"

namespace xposcheck::html {
namespace {

using text::markup;

bool has_curve(const Record& r) {
  return std::any_of(r.tensors.begin(), r.tensors.end(),
                     [](const TensorStats& t) { return t.compared && !t.curve.empty(); });
}

using Group = std::pair<std::string, DType>;

struct Selection {
  std::vector<const Record*> failing, worst_passing;
};

// Failing cases round-robin over candidate x dtype (largest error first within each),
// so one badly broken candidate cannot take every slot; then the worst PASS of each.
Selection pick(const Page& page) {
  std::map<Group, std::vector<const Record*>> failing;
  std::map<Group, const Record*> worst;
  for (const Record& r : page.records) {
    if (!has_curve(r)) continue;
    const Group g{r.candidate, r.dtype};
    if (fails_gate(r, page.verdict.policy)) {
      failing[g].push_back(&r);
    } else if (r.outcome == Outcome::pass && (!worst[g] || r.max_ratio > worst[g]->max_ratio)) {
      worst[g] = &r;
    }
  }
  Selection s;
  const std::size_t cap = page.options.max_curves;
  for (const auto& [g, r] : worst) {
    if (r && s.worst_passing.size() < cap / 2) s.worst_passing.push_back(r);
  }
  for (auto& [g, list] : failing) {
    std::stable_sort(list.begin(), list.end(), [](const Record* a, const Record* b) { return a->max_ratio > b->max_ratio; });
  }
  for (std::size_t round = 0; s.failing.size() + s.worst_passing.size() < cap; ++round) {
    bool any = false;
    for (const auto& [g, list] : failing) {
      if (round < list.size() && s.failing.size() + s.worst_passing.size() < cap) {
        s.failing.push_back(list[round]);
        any = true;
      }
    }
    if (!any) break;
  }
  return s;
}

struct Frame {
  double x0, x1;        // positions
  double lo, hi;        // log10 of the y range
  double left = 52, right = 14, top = 22, bottom = 30, width = 420, height = 230;
  double px(double pos) const { return left + (pos - x0) / (x1 - x0) * (width - left - right); }
  double py(double v) const {
    const double l = v > 0 ? std::clamp(std::log10(v), lo, hi) : lo;
    return top + (hi - l) / (hi - lo) * (height - top - bottom);
  }
};

Frame frame_for(const Record& r) {
  double x0 = INFINITY, x1 = -INFINITY, vmin = INFINITY, vmax = 0;
  for (const TensorStats& t : r.tensors) {
    if (!t.compared) continue;
    for (const PositionBin& b : t.curve) {
      x0 = std::min(x0, static_cast<double>(b.first));
      x1 = std::max(x1, static_cast<double>(b.last));
      for (double v : {b.max_ulps, b.max_allowed_ulps}) {
        if (v > 0 && std::isfinite(v)) vmin = std::min(vmin, v), vmax = std::max(vmax, v);
      }
    }
  }
  Frame f{x0, x1, -2, 1};
  if (f.x1 <= f.x0) f.x0 -= 1, f.x1 += 1;
  if (vmax > 0) {
    f.lo = std::floor(std::log10(vmin));
    f.hi = std::max(std::ceil(std::log10(vmax)), f.lo + 1);
  }
  return f;
}

void axes(std::string& out, const Frame& f) {
  const double step = std::ceil((f.hi - f.lo) / 6);
  for (double d = f.lo; d <= f.hi; d += step) {
    const double y = f.py(std::pow(10.0, d));
    out += fmt::format("<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#eaeef2\"/>"
                       "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" fill=\"#59636e\">1e{}</text>",
                       f.left, f.width - f.right, y, y, f.left - 4, y + 3, static_cast<int>(d));
  }
  const double base = f.height - f.bottom;
  out += fmt::format("<line x1=\"{0:.1f}\" x2=\"{1:.1f}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\" stroke=\"#8c959f\"/>",
                     f.left, f.width - f.right, base);
  // The ends anchored inwards so that long positions stay inside the plot.
  std::vector<std::pair<double, const char*>> ticks = {{f.x0, "start"}, {f.x1, "end"}};
  if (f.x0 < 0 && f.x1 > 0) ticks.emplace_back(0.0, "middle");
  for (const auto& [x, anchor] : ticks) {
    out += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"{}\" fill=\"#59636e\">{}</text>",
                       f.px(x), base + 13, anchor, static_cast<long>(x));
  }
  out += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"#59636e\">position</text>"
                     "<text x=\"12\" y=\"{:.1f}\" fill=\"#59636e\" transform=\"rotate(-90 12 {:.1f})\" "
                     "text-anchor=\"middle\">ulps</text>", (f.left + f.width) / 2, base + 26,
                     (f.top + base) / 2, (f.top + base) / 2);
}

const char* colour(std::size_t i) {
  static const char* palette[] = {"#0969da", "#8250df", "#1a7f37", "#bf3989"};
  return palette[i % 4];
}

// A polyline through the bin centres; non-finite values break it.
std::string polyline(const Frame& f, const std::vector<PositionBin>& curve, double PositionBin::*field) {
  std::string out, points;
  auto flush = [&](const char* extra) {
    if (!points.empty()) out += fmt::format("<polyline fill=\"none\" {} points=\"{}\"/>", extra, points);
    points.clear();
  };
  for (const PositionBin& b : curve) {
    const double v = b.*field;
    if (!std::isfinite(v)) { flush(""); continue; }
    points += fmt::format("{}{:.1f},{:.1f}", points.empty() ? "" : " ", f.px(0.5 * static_cast<double>(b.first + b.last)), f.py(v));
  }
  flush("");
  return out;
}

void plot(std::string& out, const Record& r) {
  const Frame f = frame_for(r);
  out += fmt::format("<div class=\"curve\"><div class=\"t\"><b>{}</b> · {} · {} · <span class=\"pill {}\">{}</span> "
                     "err/tol {}</div>", markup(r.candidate), dtype_pass_label(r), markup(r.case_id),
                     outcome_class(r.outcome), outcome_name(r.outcome), num(r.max_ratio));
  out += fmt::format("<svg class=\"curve-plot\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" font-size=\"10\">",
                     f.width, f.height);
  axes(out, f);
  double legend_x = f.left;
  std::size_t i = 0;
  for (const TensorStats& t : r.tensors) {
    if (!t.compared || t.curve.empty()) continue;
    const char* c = colour(i++);
    out += fmt::format("<g class=\"series\" stroke=\"{}\" stroke-width=\"1.6\"><title>{}: max ulps per position "
                       "bin (solid), allowed (dashed)</title>{}<g stroke-dasharray=\"5 3\" stroke-opacity=\"0.7\">{}</g>",
                       c, markup(t.name), polyline(f, t.curve, &PositionBin::max_ulps),
                       polyline(f, t.curve, &PositionBin::max_allowed_ulps));
    // A line needs two points: mark the bins of short curves (a single position).
    if (t.curve.size() <= 3) {
      for (const PositionBin& b : t.curve) {
        out += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\" stroke=\"none\"/>",
                           f.px(0.5 * static_cast<double>(b.first + b.last)), f.py(b.max_ulps), c);
      }
    }
    for (const PositionBin& b : t.curve) {
      if (b.max_ratio > 1 && std::isfinite(b.max_ulps)) {
        out += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2\" fill=\"#cb181d\" stroke=\"none\"/>",
                           f.px(0.5 * static_cast<double>(b.first + b.last)), f.py(b.max_ulps));
      }
    }
    out += fmt::format("</g><text x=\"{:.1f}\" y=\"12\" fill=\"{}\">&#9473; {}</text>", legend_x, c, markup(t.name));
    legend_x += 70;
  }
  out += fmt::format("<text x=\"{:.1f}\" y=\"12\" fill=\"#59636e\">- - allowed  <tspan fill=\"#cb181d\">&#9679;</tspan> "
                     "beyond</text></svg></div>\n", legend_x);
}

}  // namespace

void curves(std::string& out, const Page& page) {
  const Selection s = pick(page);
  out += fmt::format("<section id=\"curves\"><h2>Error curves</h2>\n<p class=\"note\">Largest error per "
                     "position bin (solid) against the tolerance line (dashed), log scale; red dots mark "
                     "bins beyond tolerance. At most {} plots: failing cases first (spread over candidates "
                     "and dtypes, largest error first), then the worst passing case of each candidate and "
                     "dtype.</p>\n", page.options.max_curves);
  out += fmt::format("<h3>Failing cases ({})</h3><div class=\"curves\">\n", s.failing.size());
  for (const Record* r : s.failing) plot(out, *r);
  out += fmt::format("</div>\n<h3>Worst passing cases ({})</h3><div class=\"curves\">\n", s.worst_passing.size());
  for (const Record* r : s.worst_passing) plot(out, *r);
  out += "</div></section>\n";
}

}  // namespace xposcheck::html
