// The safe-envelope heatmaps: for each candidate and dtype, one cell per
// (seq_len, mem_len) of the grid, coloured by outcome and by error / tolerance.
// The cell shows the worst record over the other parameters; small multiples
// split them per combination of the parameters that vary in the grid.
#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <functional>
#include <map>

#include "evidence.hpp"
#include "html_parts.hpp"
#include "xposcheck/harness/horizon.hpp"
#include "text_escape.hpp"

namespace xposcheck::html {
namespace {

using text::markup;

struct Rgb { double r, g, b; };

std::string mix(Rgb a, Rgb b, double t) {
  t = std::clamp(t, 0.0, 1.0);
  auto c = [t](double x, double y) { return static_cast<int>(std::lround(x + (y - x) * t)); };
  return fmt::format("#{:02x}{:02x}{:02x}", c(a.r, b.r), c(a.g, b.g), c(a.b, b.b));
}

// PASS shades from pale (error far below the tolerance) to dark (at it), on a log
// scale over three decades; TOLERANCE from light to deep orange over six decades.
std::string pass_colour(double ratio) {
  const double t = ratio > 0 ? (std::log10(ratio) + 3.0) / 3.0 : 0.0;
  return mix({217, 240, 211}, {27, 120, 55}, t);
}
std::string tolerance_colour(double ratio) {
  const double t = ratio > 1 ? std::log10(ratio) / 6.0 : 0.0;
  return mix({253, 174, 107}, {166, 54, 3}, t);
}

// Which record a cell shows when several fall on it: the most severe outcome, then
// the largest error / tolerance.
int severity(Outcome o) {
  switch (o) {
    case Outcome::pass: return 0;
    case Outcome::out_of_range: return 1;
    case Outcome::drift: return 2;
    case Outcome::tolerance: return 3;
    case Outcome::nonfinite: return 4;
    case Outcome::dim_mismatch: return 5;
    case Outcome::timeout: return 6;
    case Outcome::crash: return 7;
  }
  return 0;
}
bool worse(const Record& a, const Record& b) {
  if (severity(a.outcome) != severity(b.outcome)) return severity(a.outcome) > severity(b.outcome);
  return a.max_ratio > b.max_ratio;
}

std::string_view glyph(Outcome o) {
  switch (o) {
    case Outcome::dim_mismatch: return "D";
    case Outcome::nonfinite: return "N";
    case Outcome::crash: return "C";
    case Outcome::timeout: return "T";
    default: return "";
  }
}

// A parameter other than seq_len and mem_len, as a short label value.
struct Param {
  const char* label;
  std::function<std::string(const Case&)> value;
};

const std::vector<Param>& params() {
  static const std::vector<Param> list = {
      {"D", [](const Case& c) { return std::to_string(c.head_dim); }},
      {"R", [](const Case& c) { return c.rotary() == c.head_dim ? std::string("full") : std::to_string(c.rotary()); }},
      {"layout", [](const Case& c) { return std::string(layout_name(c.layout)); }},
      {"xpos", [](const Case& c) { return std::string(c.xpos ? "on" : "off"); }},
      {"theta", [](const Case& c) { return num(c.base); }},
      {"f", [](const Case& c) { return num(c.base_rescale); }},
      {"alpha", [](const Case& c) { return num(c.interpolation); }},
      {"B", [](const Case& c) { return num(c.scale_base); }},
      {"c", [](const Case& c) { return c.centre() == c.seq_len / 2 ? std::string("N/2") : std::to_string(c.centre()); }},
      {"batch x heads", [](const Case& c) { return fmt::format("{}x{}", c.batch, c.heads); }},
  };
  return list;
}

// The parameters that take more than one value over the records.
std::vector<const Param*> varying_params(const std::vector<Record>& records) {
  std::vector<const Param*> out;
  for (const Param& p : params()) {
    for (const Record& r : records) {
      if (p.value(r.params) != p.value(records.front().params)) {
        out.push_back(&p);
        break;
      }
    }
  }
  return out;
}

std::string combination(const Case& c, const std::vector<const Param*>& varying) {
  std::string s;
  for (const Param* p : varying) s += fmt::format("{}{}={}", s.empty() ? "" : " · ", p->label, p->value(c));
  return s;
}

struct Cell {
  const Record* worst = nullptr;
  std::size_t count = 0;
};

struct Grid {
  std::vector<long> x, y;  // seq_len and mem_len values, ascending
  std::vector<Cell> cells; // row-major over y
  Cell& at(long n, long m) {
    const auto ix = std::lower_bound(x.begin(), x.end(), n) - x.begin();
    const auto iy = std::lower_bound(y.begin(), y.end(), m) - y.begin();
    return cells[static_cast<std::size_t>(iy) * x.size() + static_cast<std::size_t>(ix)];
  }
};

Grid build_grid(const std::vector<const Record*>& records) {
  Grid g;
  for (const Record* r : records) {
    g.x.push_back(r->params.seq_len);
    g.y.push_back(r->params.mem_len);
  }
  for (auto* axis : {&g.x, &g.y}) {
    std::sort(axis->begin(), axis->end());
    axis->erase(std::unique(axis->begin(), axis->end()), axis->end());
  }
  g.cells.resize(g.x.size() * g.y.size());
  for (const Record* r : records) {
    Cell& cell = g.at(r->params.seq_len, r->params.mem_len);
    ++cell.count;
    if (!cell.worst || worse(*r, *cell.worst)) cell.worst = r;
  }
  return g;
}

std::string tooltip(const Cell& cell) {
  const Record& r = *cell.worst;
  std::string s = fmt::format("{} · {} · {}\n{} · err/tol {} · worst {} ulps", r.candidate, dtype_pass_label(r),
                              r.case_id, outcome_name(r.outcome), num(r.max_ratio),
                              num(evidence::worst_ulps(r)));
  if (!r.message.empty()) s += fmt::format("\n{}", text::first_line(r.message, 240));
  if (cell.count > 1) s += fmt::format("\n(worst of {} cases at N={}, M={})", cell.count, r.params.seq_len, r.params.mem_len);
  return markup(s);
}

void svg_cell(std::string& out, const Cell& cell, double x, double y, double size) {
  if (!cell.worst) {
    out += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#fff\" stroke=\"#eaeef2\"/>",
                       x, y, size, size);
    return;
  }
  const Record& r = *cell.worst;
  out += fmt::format("<g class=\"cell {}\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" "
                     "stroke=\"#fff\"/>", outcome_class(r.outcome), x, y, size, size, fill_colour(r));
  if (!glyph(r.outcome).empty()) {
    out += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"{}\" fill=\"#fff\" text-anchor=\"middle\" "
                       "font-weight=\"700\">{}</text>", x + size / 2, y + size * 0.72, size * 0.6,
                       glyph(r.outcome));
  }
  out += fmt::format("<title>{}</title></g>", tooltip(cell));
}

// An SVG heatmap: seq_len N to the right, mem_len M downwards.
void svg_heatmap(std::string& out, const std::vector<const Record*>& records, double size) {
  Grid g = build_grid(records);
  const double left = 52, top = 6, bottom = size >= 18 ? 46 : 40;
  const double w = left + size * static_cast<double>(g.x.size()) + 8;
  const double h = top + size * static_cast<double>(g.y.size()) + bottom;
  out += fmt::format("<svg class=\"heatmap\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
                     "role=\"img\" font-size=\"10\">", w, h, w, h);
  for (std::size_t iy = 0; iy < g.y.size(); ++iy) {
    const double y = top + size * static_cast<double>(iy);
    out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#59636e\">M={}</text>",
                       left - 4, y + size * 0.68, g.y[iy]);
    for (std::size_t ix = 0; ix < g.x.size(); ++ix) {
      svg_cell(out, g.cells[iy * g.x.size() + ix], left + size * static_cast<double>(ix), y, size);
    }
  }
  const double axis_y = top + size * static_cast<double>(g.y.size()) + 4;
  for (std::size_t ix = 0; ix < g.x.size(); ++ix) {
    const double x = left + size * (static_cast<double>(ix) + 0.5);
    out += fmt::format("<text x=\"{0}\" y=\"{1}\" text-anchor=\"end\" fill=\"#59636e\" "
                       "transform=\"rotate(-55 {0} {1})\">{2}</text>", x + 3, axis_y + 4, g.x[ix]);
  }
  out += fmt::format("<text x=\"{}\" y=\"{}\" fill=\"#59636e\">N &#8594;</text></svg>", 4, h - 4);
}

std::string counts_line(const std::vector<const Record*>& records) {
  std::map<Outcome, std::size_t> counts;
  for (const Record* r : records) ++counts[r->outcome];
  std::string s;
  for (const auto& [o, n] : counts) s += fmt::format("{}{} {}", s.empty() ? "" : ", ", n, outcome_name(o));
  return s;
}

void legend(std::string& out) {
  out += "<div class=\"legend\" id=\"legend\"><span>PASS, err/tol</span><svg width=\"150\" height=\"26\" font-size=\"10\">";
  for (int i = 0; i < 10; ++i) {
    out += fmt::format("<rect x=\"{}\" y=\"0\" width=\"15\" height=\"14\" fill=\"{}\"/>", i * 15,
                       pass_colour(std::pow(10.0, -3.0 + 3.0 * (i + 0.5) / 10)));
  }
  out += "<text x=\"0\" y=\"25\">&#8804;0.001</text><text x=\"75\" y=\"25\" text-anchor=\"middle\">0.03</text>"
         "<text x=\"150\" y=\"25\" text-anchor=\"end\">1</text></svg><span>TOLERANCE, err/tol</span>"
         "<svg width=\"150\" height=\"26\" font-size=\"10\">";
  for (int i = 0; i < 10; ++i) {
    out += fmt::format("<rect x=\"{}\" y=\"0\" width=\"15\" height=\"14\" fill=\"{}\"/>", i * 15,
                       tolerance_colour(std::pow(10.0, 6.0 * (i + 0.5) / 10)));
  }
  out += "<text x=\"0\" y=\"25\">1</text><text x=\"150\" y=\"25\" text-anchor=\"end\">&#8805;1e6</text></svg>";
  auto swatch = [&](const std::string& fill, std::string_view mark, std::string_view label) {
    out += fmt::format("<span><svg width=\"16\" height=\"16\"><rect width=\"16\" height=\"16\" fill=\"{}\" "
                       "stroke=\"#d0d7de\"/><text x=\"8\" y=\"12\" font-size=\"10\" font-weight=\"700\" "
                       "fill=\"#fff\" text-anchor=\"middle\">{}</text></svg> {}</span>", fill, mark, label);
  };
  swatch("#8856a7", "", "DRIFT");
  swatch("#cb181d", "D", "DIM_MISMATCH");
  swatch("#cb181d", "N", "NONFINITE");
  swatch("#cb181d", "C", "CRASH");
  swatch("#cb181d", "T", "TIMEOUT");
  swatch("url(#xpc-hatch)", "", "OUT_OF_RANGE (beyond the dtype's safe envelope)");
  swatch("#fff", "", "no case");
  out += "</div>\n";
}

// Hatching and other shared SVG definitions; not display:none, which would stop
// browsers from painting the pattern where it is used.
constexpr const char* kDefs =
    "<svg width=\"0\" height=\"0\" style=\"position:absolute\" aria-hidden=\"true\"><defs>"
    "<pattern id=\"xpc-hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
    "patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#d9d9d9\"/>"
    "<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#8c8c8c\" stroke-width=\"2.5\"/></pattern>"
    "</defs></svg>\n";

// Records by dtype and pass: forward heatmaps first, then the backward ones.
using PerDType = std::map<DTypePass, std::vector<const Record*>>;

// The records of each candidate by dtype, candidates in the summary's order.
std::vector<std::pair<std::string, PerDType>> by_candidate(const Page& page) {
  std::vector<std::pair<std::string, PerDType>> out;
  std::map<std::string, std::size_t> index;
  for (const SummaryRow& row : page.summary.rows()) {
    if (index.emplace(row.candidate, out.size()).second) out.emplace_back(row.candidate, PerDType{});
  }
  for (const Record& r : page.records) out[index.at(r.candidate)].second[{r.dtype, r.pass}].push_back(&r);
  return out;
}

// One row of small heatmaps (a dtype each) per combination of the varying parameters.
void small_multiples(std::string& out, const std::string& name, const PerDType& per_dtype,
                     const std::vector<const Param*>& varying) {
  std::map<std::string, PerDType> by_combo;
  for (const auto& [t, records] : per_dtype) {
    for (const Record* r : records) by_combo[combination(r->params, varying)][t].push_back(r);
  }
  out += fmt::format("<details class=\"small\"><summary>{}: per combination ({} &times; {} heatmaps)"
                     "</summary>\n", markup(name), by_combo.size(), per_dtype.size());
  for (const auto& [label, combo] : by_combo) {
    out += fmt::format("<div class=\"s\">{}</div><div class=\"hm-row\">", markup(label));
    for (const auto& [t, records] : combo) {
      out += fmt::format("<div class=\"hm\"><div class=\"s\">{} · {}</div>", dtype_pass_label(t), counts_line(records));
      svg_heatmap(out, records, 14);
      out += "</div>";
    }
    out += "</div>\n";
  }
  out += "</details>\n";
}

}  // namespace

std::string fill_colour(const Record& r) {
  switch (r.outcome) {
    case Outcome::pass: return pass_colour(r.max_ratio);
    case Outcome::tolerance: return tolerance_colour(r.max_ratio);
    case Outcome::out_of_range: return "url(#xpc-hatch)";
    case Outcome::drift: return "#8856a7";
    default: return "#cb181d";
  }
}

namespace {

// Under each candidate's heatmaps, the accuracy horizon of each dtype: where its
// relative error first exceeds the run's threshold (information, not the gate).
void horizon_lines(std::string& out, const std::string& candidate, const std::vector<HorizonSummary>& horizons) {
  std::string items;
  for (const HorizonSummary& h : horizons) {
    if (h.candidate != candidate) continue;
    items += fmt::format("<li><b>{}</b>: {}</li>", dtype_name(h.dtype), markup(describe_horizon_reach(h)));
  }
  if (!items.empty()) out += "<ul class=\"horizon\" title=\"accuracy horizon\">" + items + "</ul>\n";
}

}  // namespace

void heatmaps(std::string& out, const Page& page) {
  out += "<section id=\"envelope\"><h2>Envelope heatmaps</h2>\n";
  out += kDefs;
  if (page.records.empty()) {
    out += "<p class=\"note\">No results.</p></section>\n";
    return;
  }
  const auto varying = varying_params(page.records);
  std::string over;
  for (const Param* p : varying) over += (over.empty() ? "" : ", ") + std::string(p->label);
  out += fmt::format("<p class=\"note\">One cell per (seq_len N, mem_len M) of the grid. {} Hover a "
                     "cell for its case, outcome and message.</p>\n",
                     varying.empty() ? std::string("No other parameter varies.")
                                     : markup("Each large heatmap shows the worst case over " + over +
                                              "; \"per combination\" splits them."));
  legend(out);
  HorizonTable horizon_table(page.run.horizon_threshold);
  for (const Record& r : page.records) horizon_table.add(r);
  const std::vector<HorizonSummary> horizons = horizon_table.summaries();
  if (!horizons.empty()) {
    out += fmt::format("<p class=\"note\">Accuracy horizon: the first position |p|, moving out from 0, "
                       "where a bin of q_out or k_out has a relative error above {} of the pair magnitude, "
                       "over every case (docs/long-context.md).</p>\n",
                       markup(threshold_text(horizons.front().threshold)));
  }
  for (const auto& [name, per_dtype] : by_candidate(page)) {
    out += fmt::format("<h3>{}</h3>\n<div class=\"hm-row\">", markup(name));
    for (const auto& [t, records] : per_dtype) {
      out += fmt::format("<div class=\"hm\"><div class=\"t\">{}{}</div><div class=\"s\">{}</div>",
                         dtype_pass_label(t), varying.empty() ? "" : markup(" · worst over " + over),
                         counts_line(records));
      svg_heatmap(out, records, 20);
      out += "</div>";
    }
    out += "</div>\n";
    horizon_lines(out, name, horizons);
    if (!varying.empty()) small_multiples(out, name, per_dtype, varying);
  }
  out += "</section>\n";
}

}  // namespace xposcheck::html
