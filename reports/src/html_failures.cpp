// The failure table: every record that did not PASS with its evidence (SPEC
// section 3), sortable and filterable by the inline script at the end of the page.
#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <set>

#include "evidence.hpp"
#include "html_parts.hpp"
#include "text_escape.hpp"

namespace xposcheck::html {
namespace {

using text::markup;

constexpr std::size_t kMaxEvidenceChars = 8000;

// The value the script sorts a numeric column by.
std::string sort_value(double v) {
  if (std::isnan(v)) return "-1";
  if (std::isinf(v)) return v > 0 ? "1e308" : "-1e308";
  return fmt::format("{:.6g}", v);
}

// What explains the failure (docs/diagnosis.md), under the message's first line.
std::string diagnosis_lines(const Record& r) {
  if (!r.diagnosis) return "";
  const Diagnosis& d = *r.diagnosis;
  return "\n<b>diagnosis</b>: " + markup(summary_line(d)) +
         (d.evidence.empty() ? "" : "\n  " + markup(d.evidence));
}

// The first line of the harness's message in bold, the diagnosis, then the rest of the
// message (a traceback) and the evidence lines, cut when very long.
std::string evidence_cell(const Record& r) {
  std::string ev = evidence::text(r);
  if (ev.size() > kMaxEvidenceChars) {
    ev = ev.substr(0, kMaxEvidenceChars);
    ev = ev.substr(0, ev.rfind('\n')) + "\n(cut here; the results file has it all)";
  }
  if (r.message.empty()) return markup(ev);
  const std::size_t eol = ev.find('\n');
  std::string cell = "<b>" + markup(ev.substr(0, eol)) + "</b>" + diagnosis_lines(r);
  if (eol != std::string::npos) cell.append("\n").append(markup(ev.substr(eol + 1)));
  return cell;
}

// A numeric cell; "-" where nothing was compared (the outcome came before any output).
std::string number_cell(double v, bool compared) {
  return compared ? fmt::format("<td data-v=\"{}\">{}</td>", sort_value(v), num(v))
                  : std::string("<td data-v=\"-1\">-</td>");
}

void row(std::string& out, const Record& r, bool gate) {
  const bool compared = std::any_of(r.tensors.begin(), r.tensors.end(), [](const TensorStats& t) { return t.compared; });
  out += fmt::format("<tr data-outcome=\"{}\" data-gate=\"{}\"><td class=\"l\">{}</td><td class=\"l\">{}</td>"
                     "<td class=\"l\">{}</td><td class=\"l\"><span class=\"pill {}\">{}</span></td>{}{}"
                     "<td class=\"l\">{}</td><td class=\"ev\"><pre>{}</pre></td></tr>\n",
                     outcome_name(r.outcome), gate ? 1 : 0, markup(r.candidate), dtype_pass_label(r),
                     markup(r.case_id), outcome_class(r.outcome), outcome_name(r.outcome),
                     number_cell(r.max_ratio, compared), number_cell(evidence::worst_ulps(r), compared),
                     gate ? "fails" : "passes", evidence_cell(r));
}

void filters(std::string& out, const std::set<Outcome>& present) {
  out += "<div class=\"filters\"><input type=\"search\" id=\"f-text\" placeholder=\"filter: candidate, "
         "case, message...\" aria-label=\"filter rows\"><select id=\"f-outcome\" aria-label=\"outcome\">"
         "<option value=\"\">every outcome</option>";
  for (Outcome o : present) out += fmt::format("<option>{}</option>", outcome_name(o));
  out += "</select><label><input type=\"checkbox\" id=\"f-gate\"> gate failures only</label>"
         "<span id=\"f-count\" class=\"sub\"></span></div>\n";
}

// Sorts on a header click (numbers by data-v), filters on text, outcome and gate.
// Marks the table data-ready="1" once attached, which the browser check looks for.
constexpr const char* kScript = R"js(
(function () {
  var table = document.getElementById('failures');
  if (!table) return;
  var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
  var text = document.getElementById('f-text'), outcome = document.getElementById('f-outcome');
  var gate = document.getElementById('f-gate'), count = document.getElementById('f-count');
  function apply() {
    var q = text.value.toLowerCase(), o = outcome.value, g = gate.checked, shown = 0;
    rows.forEach(function (r) {
      var keep = (!o || r.getAttribute('data-outcome') === o) && (!g || r.getAttribute('data-gate') === '1') &&
                 (!q || r.textContent.toLowerCase().indexOf(q) >= 0);
      r.hidden = !keep;
      if (keep) shown++;
    });
    count.textContent = shown + ' of ' + rows.length + ' rows shown';
  }
  function key(r, i, numeric) {
    var c = r.cells[i];
    return numeric ? parseFloat(c.getAttribute('data-v')) : c.textContent.toLowerCase();
  }
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, i) {
    th.classList.add('sortable');
    th.tabIndex = 0;
    function sort() {
      var dir = th.getAttribute('data-dir') === 'asc' ? -1 : 1;
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute('data-dir'); });
      th.setAttribute('data-dir', dir > 0 ? 'asc' : 'desc');
      var numeric = th.getAttribute('data-type') === 'num';
      rows.sort(function (a, b) {
        var x = key(a, i, numeric), y = key(b, i, numeric);
        return x < y ? -dir : x > y ? dir : 0;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    }
    th.addEventListener('click', sort);
    th.addEventListener('keydown', function (e) { if (e.key === 'Enter') sort(); });
  });
  [text, outcome, gate].forEach(function (e) {
    e.addEventListener('input', apply);
    e.addEventListener('change', apply);
  });
  apply();
  table.setAttribute('data-ready', '1');
})();
)js";

}  // namespace

void failures(std::string& out, const Page& page) {
  std::vector<const Record*> listed;
  std::set<Outcome> present;
  for (const Record& r : page.records) {
    if (r.outcome == Outcome::pass) continue;
    listed.push_back(&r);
    present.insert(r.outcome);
  }
  out += fmt::format("<section id=\"failures-section\"><h2>Failures ({})</h2>\n<p class=\"note\">Every "
                     "result that did not PASS, with its evidence: shapes for DIM_MISMATCH, the worst "
                     "element for TOLERANCE, the first non-finite element for NONFINITE, where the "
                     "dtype's envelope is exceeded for OUT_OF_RANGE, the message for CRASH and TIMEOUT. "
                     "Click a column header to sort.</p>\n", listed.size());
  filters(out, present);
  out += "<table class=\"fail-table\" id=\"failures\"><thead><tr><th class=\"l\">candidate</th>"
         "<th class=\"l\">dtype</th><th class=\"l\">case</th><th class=\"l\">outcome</th>"
         "<th data-type=\"num\">err/tol</th><th data-type=\"num\">worst ulps</th><th class=\"l\">gate</th>"
         "<th class=\"l\">evidence</th></tr></thead><tbody>\n";
  const std::size_t shown = std::min(listed.size(), page.options.max_failure_rows);
  for (std::size_t i = 0; i < shown; ++i) {
    row(out, *listed[i], fails_gate(*listed[i], page.verdict.policy));
  }
  out += "</tbody></table>\n";
  if (shown < listed.size()) {
    out += fmt::format("<p class=\"note\">{} more not shown; the results file has them all.</p>\n",
                       listed.size() - shown);
  }
  out += "</section>\n";
}

void tail(std::string& out) {
  out += fmt::format("</main>\n<script>{}</script>\n</body></html>\n", kScript);
}

}  // namespace xposcheck::html
