// Packed batches (docs/streams.md): per candidate and dtype, every packed batch with one
// cell per sequence (its outcome's colour, err/tol in its title), the failing sequences
// and the first one's evidence.
#include <algorithm>
#include <fmt/format.h>

#include "html_parts.hpp"
#include "text_escape.hpp"

namespace xposcheck::html {
namespace {

using text::markup;

std::string sequence_cells(const PackedVerdict& v) {
  std::string cells;
  for (const SequenceVerdict& s : v.sequences) {
    cells += fmt::format("<span class=\"pill {}\" title=\"sequence {}: N = {}, M = {}, first position {}; "
                         "err/tol {}\">{}</span>",
                         outcome_class(s.outcome), s.index, s.seq_len, s.mem_len, s.first_position,
                         num(s.max_ratio), s.index);
  }
  return cells;
}

std::string failing(const PackedVerdict& v) {
  if (v.failing.empty()) return "none";
  const SequenceVerdict& s = v.sequences[static_cast<std::size_t>(v.failing.front())];
  std::string list;
  for (long i : v.failing) list += (list.empty() ? "" : ", ") + std::to_string(i);
  return fmt::format("{} of {} ({}); sequence {} (N = {}, M = {}, rows from {}): {}", v.failing.size(),
                     v.sequences.size(), list, s.index, s.seq_len, s.mem_len, s.first_query_row, s.message);
}

}  // namespace

void packed_batches(std::string& out, const Page& page) {
  const auto rows = records_by_candidate(page, [](const Record& r) { return r.params.packed != nullptr; });
  if (rows.empty()) return;
  out += "<section id=\"packed\"><h2>Packed batches</h2>\n<p class=\"note\">Several sequences in one "
         "tensor (cu_seqlens), each with its own positions and XPOS centre, given to the candidate in one "
         "call and judged sequence by sequence: one cell per sequence (hover for its sizes and err/tol), "
         "then the sequences that fail and the first one's evidence.</p>\n"
         "<table class=\"streams\"><tr><th>candidate</th><th>dtype</th><th>case</th><th>outcome</th>"
         "<th>sequences</th><th>failing</th></tr>\n";
  for (const Record* r : rows) {
    out += record_row_start(*r);
    if (!r->packed) {
      out += fmt::format("<td colspan=\"2\">{}</td></tr>\n", markup(r->message));
      continue;
    }
    out += fmt::format("<td>{}</td><td>{}</td></tr>\n", sequence_cells(*r->packed), markup(failing(*r->packed)));
  }
  out += "</table></section>\n";
}

}  // namespace xposcheck::html
