// The page frame of the HTML report: head and CSS, banner, overview tables, run
// metadata and the inline script that sorts and filters the failure table.
#include <algorithm>
#include <fmt/format.h>

#include "evidence.hpp"
#include "html_parts.hpp"
#include "text_escape.hpp"
#include "xposcheck/version.hpp"

namespace xposcheck::html {
namespace {

using text::markup;

constexpr const char* kCss = R"css(
:root{--pass:#238b45;--tol:#f16913;--bad:#cb181d;--oor:#8c8c8c;--drift:#8856a7;
--ink:#1f2328;--muted:#59636e;--line:#d0d7de;--panel:#f6f8fa;--link:#0969da}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);background:#fff}
header{padding:14px 24px 10px;border-bottom:1px solid var(--line);background:var(--panel)}
h1{font-size:20px;margin:0 0 6px;display:flex;align-items:center;gap:14px;flex-wrap:wrap}
.verdict{font-size:15px;font-weight:600;padding:3px 12px;border-radius:4px;color:#fff}
.verdict.fail{background:var(--bad)}.verdict.ok{background:var(--pass)}
.sub{color:var(--muted)}
nav{margin-top:6px}nav a{margin-right:14px;color:var(--link);text-decoration:none}
main{padding:0 24px 40px}
section{margin-top:26px}
h2{font-size:17px;margin:0 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{font-size:15px;margin:16px 0 6px}
p.note{color:var(--muted);margin:4px 0 10px;max-width:1100px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{border:1px solid var(--line);padding:3px 8px;text-align:right;vertical-align:top}
th{background:var(--panel);font-weight:600}
.l{text-align:left}
td.gate-fail{color:var(--bad);font-weight:700}td.gate-ok{color:var(--pass)}
td.zero{color:#b0b7bf}
table.acc td{text-align:left;min-width:190px}
table.acc td.fail{background:#fdecea}table.acc td.ok{background:#eaf6ec}
.acc .max{font-weight:600}
.pill{display:inline-block;padding:0 6px;border-radius:9px;font-size:11px;margin:1px 2px 1px 0;color:#fff;white-space:nowrap}
.pill.pass{background:var(--pass)}.pill.tol{background:var(--tol)}.pill.bad{background:var(--bad)}
.pill.oor{background:var(--oor)}.pill.drift{background:var(--drift)}
.hm-row{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}
.hm{border:1px solid var(--line);border-radius:4px;padding:6px 8px;background:#fff;width:min-content}
.hm .t{font-weight:600}.hm .s{color:var(--muted);font-size:12px}
ul.horizon{margin:6px 0 10px;padding-left:18px;font-size:13px}
details{margin:6px 0 14px}summary{cursor:pointer;color:var(--link)}
.small .hm{padding:4px 6px}
.legend{display:flex;flex-wrap:wrap;gap:14px;align-items:center;margin:6px 0 12px;font-size:13px}
.legend svg{vertical-align:middle}
.curves{display:flex;flex-wrap:wrap;gap:14px}
.curve{border:1px solid var(--line);border-radius:4px;padding:6px 8px}
.curve .t{font-size:12px;max-width:420px;overflow-wrap:anywhere}
.filters{display:flex;gap:12px;align-items:center;margin:6px 0 8px;flex-wrap:wrap}
.filters input[type=search]{width:320px;padding:3px 6px}
table.fail-table th.sortable{cursor:pointer;user-select:none}
table.fail-table th[data-dir=asc]::after{content:" \25B2"}table.fail-table th[data-dir=desc]::after{content:" \25BC"}
table.fail-table td.ev{text-align:left;max-width:760px}
pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:0;font:12px/1.35 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:0}
dl.meta dt{color:var(--muted)}dl.meta dd{margin:0;overflow-wrap:anywhere}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif}
)css";

std::vector<Outcome> outcomes_seen(const SummaryTable& s) {
  std::vector<Outcome> seen;
  for (Outcome o : kAllOutcomes) {
    const bool any = std::any_of(s.rows().begin(), s.rows().end(),
                                 [o](const SummaryRow& r) { return r.count(o) > 0; });
    if (any || o == Outcome::pass) seen.push_back(o);
  }
  return seen;
}

std::vector<std::string> candidates_in_order(const SummaryTable& s) {
  std::vector<std::string> names;
  for (const SummaryRow& row : s.rows()) {
    if (std::find(names.begin(), names.end(), row.candidate) == names.end()) names.push_back(row.candidate);
  }
  return names;
}

// The dtypes seen, forward columns first, then the backward ones.
std::vector<DTypePass> dtypes_in_order(const SummaryTable& s) {
  std::vector<DTypePass> types;
  for (Pass p : {Pass::forward, Pass::backward}) {
    for (DType t : kAllDTypes) {
      const DTypePass column{t, p};
      if (std::any_of(s.rows().begin(), s.rows().end(), [&](const SummaryRow& r) { return r.column() == column; }))
        types.push_back(column);
    }
  }
  return types;
}

const SummaryRow* find_row(const SummaryTable& s, const std::string& candidate, DTypePass t) {
  for (const SummaryRow& row : s.rows()) {
    if (row.candidate == candidate && row.column() == t) return &row;
  }
  return nullptr;
}

std::string pills(const SummaryRow& row) {
  std::string out;
  for (Outcome o : kAllOutcomes) {
    if (row.count(o) == 0) continue;
    out += fmt::format("<span class=\"pill {}\">{} {}</span>", outcome_class(o), row.count(o),
                       outcome_name(o));
  }
  return out;
}

// Boost.Math style: a candidate per row, a dtype per column, max and mean error per cell.
void accuracy_matrix(std::string& out, const SummaryTable& s) {
  const auto types = dtypes_in_order(s);
  out += "<table class=\"acc\" id=\"accuracy\"><thead><tr><th class=\"l\">candidate</th>";
  for (DTypePass t : types) out += fmt::format("<th class=\"l\">{}</th>", dtype_pass_label(t));
  out += "</tr></thead><tbody>\n";
  for (const std::string& name : candidates_in_order(s)) {
    out += fmt::format("<tr><th class=\"l\">{}</th>", markup(name));
    for (DTypePass t : types) {
      const SummaryRow* row = find_row(s, name, t);
      if (!row) {
        out += "<td></td>";
        continue;
      }
      out += fmt::format("<td class=\"{}\"><span class=\"max\">max {} ulp</span> (mean {})<br>"
                         "err/tol {}<br>{}</td>", row->gate_failed ? "fail" : "ok",
                         num(row->worst_ulps), num(row->mean_ulps()), num(row->worst_ratio), pills(*row));
    }
    out += "</tr>\n";
  }
  out += "</tbody></table>\n";
}

void counts_table(std::string& out, const SummaryTable& s) {
  const auto seen = outcomes_seen(s);
  out += "<table class=\"counts\" id=\"counts\"><thead><tr><th class=\"l\">candidate</th><th class=\"l\">dtype</th>";
  for (Outcome o : seen) out += fmt::format("<th>{}</th>", outcome_name(o));
  out += "<th>worst ulps</th><th>mean ulps</th><th>err/tol</th><th class=\"l\">worst case</th>"
         "<th class=\"l\">gate</th></tr></thead><tbody>\n";
  for (const SummaryRow& row : s.rows()) {
    out += fmt::format("<tr><td class=\"l\">{}</td><td class=\"l\">{}</td>", markup(row.candidate),
                       dtype_pass_label(row.column()));
    for (Outcome o : seen) {
      out += fmt::format("<td{}>{}</td>", row.count(o) ? "" : " class=\"zero\"", row.count(o));
    }
    out += fmt::format("<td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td><td class=\"l {}\">{}</td></tr>\n",
                       num(row.worst_ulps), num(row.mean_ulps()), num(row.worst_ratio),
                       markup(row.worst_case), row.gate_failed ? "gate-fail" : "gate-ok",
                       row.gate_failed ? "FAIL" : "ok");
  }
  out += "</tbody></table>\n";
}

std::string optional_value(const std::optional<double>& v) { return v ? num(*v) : "-"; }

void tolerance_table(std::string& out, const RunInfo& run) {
  out += "<table id=\"tolerance\"><thead><tr><th class=\"l\">dtype</th><th class=\"l\">rule</th>"
         "<th>base ulps</th><th>angle factor</th><th>scale factor</th><th>logits factor</th>"
         "<th>relative k</th><th>relative floor ulps</th></tr></thead><tbody>\n";
  for (const auto& [dtype, spec] : run.tolerance) {
    out += fmt::format("<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td>"
                       "<td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n", markup(dtype),
                       spec.rule ? rule_name(*spec.rule) : "-", optional_value(spec.base_ulps),
                       optional_value(spec.angle_factor), optional_value(spec.scale_factor),
                       optional_value(spec.logits_factor), optional_value(spec.relative_k),
                       optional_value(spec.relative_floor_ulps));
  }
  out += "</tbody></table>\n";
}

std::string joined(const std::vector<std::string>& items) {
  std::string s;
  for (const std::string& item : items) s += (s.empty() ? "" : ", ") + item;
  return s;
}

}  // namespace

std::string num(double v) { return evidence::number(v); }

std::string record_row_start(const Record& r) {
  return fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td><span class=\"pill {}\">{}</span></td>",
                     text::markup(r.candidate), dtype_name(r.dtype), text::markup(r.case_id),
                     outcome_class(r.outcome), outcome_name(r.outcome));
}

std::string_view outcome_class(Outcome o) {
  switch (o) {
    case Outcome::pass: return "pass";
    case Outcome::tolerance: return "tol";
    case Outcome::out_of_range: return "oor";
    case Outcome::drift: return "drift";
    default: return "bad";
  }
}

void head(std::string& out, const Page& page) {
  const std::size_t total = page.verdict.total, failing = page.verdict.failing;
  const bool failed = page.verdict.records_failed();
  out += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  out += fmt::format("<title>xposcheck report: {}</title>\n<style>{}</style>\n</head><body>\n",
                     markup(page.run.grid_name), kCss);
  out += fmt::format("<header><h1>xposcheck accuracy report: {} <span class=\"verdict {}\" id=\"verdict\">"
                     "gate {}: {} failing of {}</span></h1>\n", markup(page.run.grid_name),
                     failed ? "fail" : "ok", failed ? "FAIL" : "PASS", failing, total);
  out += fmt::format("<div class=\"sub\">{} candidates &times; {} dtypes &middot; grid {} &middot; "
                     "xposcheck {}{} &middot; {} &middot; {}</div>\n",
                     candidates_in_order(page.summary).size(), dtypes_in_order(page.summary).size(),
                     markup(page.run.grid_source), markup(page.run.tool_version),
                     page.run.git_commit.empty() ? "" : " (" + markup(page.run.git_commit) + ")",
                     markup(page.run.machine), markup(page.run.started_at));
  out += "<nav><a href=\"#overview\">Overview</a><a href=\"#envelope\">Envelope heatmaps</a>"
         "<a href=\"#curves\">Error curves</a><a href=\"#streams\">Streams</a><a href=\"#packed\">Packed batches</a>"
         "<a href=\"#failures-section\">Failures</a>"
         "<a href=\"#run\">Run</a></nav></header>\n<main>\n";
}

void overview(std::string& out, const Page& page) {
  out += "<section id=\"overview\"><h2>Overview</h2>\n<p class=\"note\">Worst error per candidate "
         "and dtype, in ulps of the dtype at the pair magnitude: max over every compared element "
         "and mean over all of them; err/tol is the largest error divided by the allowed error "
         "among PASS and TOLERANCE results (above 1 fails). Green cells pass the gate, red cells "
         "fail it.</p>\n";
  accuracy_matrix(out, page.summary);
  out += "<h3>Outcomes</h3>\n";
  counts_table(out, page.summary);
  out += "</section>\n";
}

void run_info(std::string& out, const Page& page) {
  const RunInfo& run = page.run;
  out += "<section id=\"run\"><h2>Run</h2>\n<dl class=\"meta\">\n";
  const std::pair<const char*, std::string> items[] = {
      {"tool version", run.tool_version}, {"git commit", run.git_commit},
      {"grid", run.grid_name}, {"grid file", run.grid_source},
      {"grid fingerprint", run.grid_fingerprint}, {"candidates", joined(run.candidates)},
      {"dtypes", joined(run.dtypes)}, {"machine", run.machine}, {"started", run.started_at},
      {"shard", run.shard.empty() ? "-" : run.shard},
      {"gate", page.verdict.policy.out_of_range_fails ? "OUT_OF_RANGE fails the gate"
                                               : "OUT_OF_RANGE passes the gate (a dtype property)"},
      {"report written by", std::string("xposcheck ") + kVersion}};
  for (const auto& [label, value] : items) {
    out += fmt::format("<dt>{}</dt><dd>{}</dd>\n", label, markup(value.empty() ? "-" : value));
  }
  out += "</dl>\n<h3>Tolerance profile</h3>\n";
  tolerance_table(out, run);
  out += "</section>\n";
}

}  // namespace xposcheck::html
