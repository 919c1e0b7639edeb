#include "block_diagnosis.hpp"

#include <algorithm>
#include <cmath>
#include <optional>

#include "xposcheck/harness/compare.hpp"
#include "xposcheck/reference/golden_blocks.hpp"
#include "xposcheck/reference/inputs.hpp"
#include "xposcheck/reference/tables.hpp"

namespace xposcheck::detail {
namespace {

// Inputs, golden and candidate outputs of the chosen rows of q or k, [batch, heads, rows, D].
struct Gathered {
  Tensor in, golden, out;
};

Shape rows_shape(const Case& c, long rows) {
  return Shape{std::size_t(c.batch), std::size_t(c.heads), std::size_t(rows), std::size_t(c.head_dim)};
}

// Puts every row of a block [bh][count][D] at rows at..at+count-1 of [bh][n][D].
void place_rows(const Tensor& block, Tensor& to, long at) {
  const long bh = long(block.shape[0] * block.shape[1]), count = long(block.shape[2]), n = long(to.shape[2]);
  const long d = long(block.shape[3]);
  for (long h = 0; h < bh; ++h)
    std::copy_n(block.row(std::size_t(h * count)), count * d, to.row(std::size_t(h * n + at)));
}

// The rows (ascending) of q (query) or k, each run of consecutive rows asked of the
// candidate as one block; none when a block now fails or changes shape.
std::optional<Gathered> gather(const GridCase& gc, DType dtype, bool query, const std::vector<long>& rows,
                               const BlockOutputs& outputs) {
  const Case& c = gc.params;
  const long n = long(rows.size());
  Gathered g{Tensor::unfilled(rows_shape(c, n)), {}, Tensor::unfilled(rows_shape(c, n))};
  for (long i = 0; i < n;) {
    long count = 1;
    while (i + count < n && rows[std::size_t(i + count)] == rows[std::size_t(i)] + count) ++count;
    Tensor in = Tensor::unfilled(rows_shape(c, count));
    generate_rows(c, gc.seed, dtype, query, rows[std::size_t(i)], count, in.data.data());
    auto got = outputs(in, query, rows[std::size_t(i)]);
    const Tensor* out = std::get_if<Tensor>(&got);
    if (!out || out->shape != in.shape || out->size() != in.size()) return std::nullopt;
    place_rows(in, g.in, i);
    place_rows(*out, g.out, i);
    i += count;
  }
  g.golden = Tensor::unfilled(g.in.shape);
  g.golden.data = golden_fast_rows(c, query, rows, g.in.data, judging_golden_options(c, 0).correctly_rounded);
  return g;
}

// The gathered output at a judged element, or none when its row is not held.
std::optional<double> gathered_at(const ElementRef& e, const Case& c, const std::vector<long>& held,
                                  const Tensor& out) {
  const std::optional<long> at = held_index(held, e.row);
  if (!at) return std::nullopt;
  const long lead = e.batch * c.heads + e.head, n = long(held.size());
  return out.row(std::size_t(lead * n + *at))[e.feature];
}

// Whether the rows asked again are the rows judged: each tensor's worst element and
// first non-finite one, which the sample holds whenever they failed, still have the
// values the comparison recorded. A candidate's files could change between the two
// reads, and a diagnosis of other values than those judged could accept a convention
// (or a convention's envelope) the judged outputs do not follow.
bool same_as_judged(const Record& record, const Case& c, const DiagnosisRows& rows, const Gathered& q,
                    const Gathered& k) {
  for (const TensorStats& t : record.tensors) {
    const bool key = t.name == "k_out";
    if (!t.compared || (!key && t.name != "q_out")) continue;
    const std::vector<long>& held = key ? rows.key : rows.query;
    const Tensor& out = (key ? k : q).out;
    if (t.max_ratio > 1) {
      const std::optional<double> got = gathered_at(t.worst, c, held, out);
      if (!got || !(*got == t.worst.got || (std::isnan(*got) && std::isnan(t.worst.got)))) return false;
    }
    if (t.first_nonfinite) {
      const std::optional<double> got = gathered_at(*t.first_nonfinite, c, held, out);
      if (!got || std::isfinite(*got)) return false;
    }
  }
  return true;
}

}  // namespace

void diagnose_in_blocks(const GridCase& gc, DType dtype, const BlockOutputs* outputs,
                        const Tolerance& tol, const DiagnosisOptions& options, Record& record,
                        FrameJudge judge_frame) {
  if (!options.enabled || !wants_diagnosis(record)) return;
  const Case& c = gc.params;
  const DiagnosisRows rows = diagnosis_rows(c, record, options);
  std::optional<Gathered> q, k;
  if (outputs) {
    q = gather(gc, dtype, true, rows.query, *outputs);
    k = q ? gather(gc, dtype, false, rows.key, *outputs) : std::nullopt;
    if (!k) return;
    if (!same_as_judged(record, c, rows, *q, *k)) {
      record.message += "; not diagnosed: the candidate's outputs changed after they were judged";
      return;
    }
  }
  Gathered none;
  Golden golden;
  golden.q_out = std::move((q ? *q : none).golden);
  golden.k_out = std::move((k ? *k : none).golden);
  std::optional<CandidateOutput> output;
  if (outputs) output = CandidateOutput{std::move(q->out), std::move(k->out), std::string(dtype_name(dtype)),
                                        std::string(dtype_name(dtype))};
  // The diagnosis reads angles alone of its table (omega_j p): one position serves.
  const RotaryTables tables(c, 1, 1);
  const DiagnosisInput input{&c,     dtype,        q ? &q->in : &none.in, k ? &k->in : &none.in,
                             &golden, &tables,     &tol,                  output ? &*output : nullptr,
                             {},      false,       rows.query,            rows.key,
                             std::move(judge_frame)};
  diagnose_record(input, record, options);
}

}  // namespace xposcheck::detail
