// The built-in candidates' backward pass. The forward map is linear in q and in k, and
// per pair a rotation by phi times sigma^e, so its transpose, the backward pass, is a
// rotation by -phi times the same sigma^e (docs/gradients.md): the recipe's own tables
// and arithmetic with the sine negated. A backward bug, when planted, breaks exactly
// one step of that, as real training code has.
#include "candidates/recipe.hpp"
#include "xposcheck/reference/packed.hpp"

#include <algorithm>

namespace xposcheck::candidates {
namespace {

// Every product and sum rounded to `acc` (a half-precision accumulator), then to the
// case's dtype.
PairOut rotate_pair_in(DType acc, DType dtype, double xa, double xb, double cs, double sn, double scale) {
  const auto r = [acc](double v) { return round_to(acc, v); };
  const double c = r(cs), s = r(sn), k = r(scale);
  return {round_to(dtype, r(r(r(xa * c) - r(xb * s)) * k)),
          round_to(dtype, r(r(r(xb * c) + r(xa * s)) * k))};
}

std::optional<DType> accumulator(BackwardBug bug) {
  if (bug == BackwardBug::bf16_accumulation) return DType::bf16;
  if (bug == BackwardBug::fp16_accumulation) return DType::fp16;
  return std::nullopt;
}

// dk without its first M rows, or with them zeroed, as the bug says.
Tensor memory_rows(const Case& c, Tensor dk, BackwardBug bug) {
  const auto m = static_cast<std::size_t>(c.mem_len), rows = dk.shape[2], d = dk.shape[3];
  const std::size_t lead = dk.shape[0] * dk.shape[1];
  if (bug == BackwardBug::memory_zeroed) {
    for (std::size_t l = 0; l < lead; ++l) std::fill_n(dk.row(l * rows), m * d, 0.0);
    return dk;
  }
  if (bug != BackwardBug::memory_dropped) return dk;
  Tensor kept({dk.shape[0], dk.shape[1], rows - m, d});
  for (std::size_t l = 0; l < lead; ++l)
    std::copy_n(dk.row(l * rows + m), (rows - m) * d, kept.row(l * (rows - m)));
  return kept;
}

}  // namespace

TableMemo& table_memo(bool query) {
  thread_local TableMemo memo[2];
  return memo[query ? 0 : 1];
}

std::string table_memo_key(const std::string& candidate, const Case& c, DType dtype) {
  return candidate + "|" + case_id(c) + "|" + std::string(dtype_name(dtype));
}

Tensor RecipeCandidate::backward_rows(const Case& c, DType dtype, const Tensor& g, bool query) {
  const BackwardBug bug = recipe_.backward_bug;
  const long rows = static_cast<long>(g.shape[2]), lead = c.batch * c.heads;
  const Frequencies f = frequencies(recipe_, c, dtype);
  const std::optional<DType> acc = accumulator(bug);
  // The forward pass's tables of this case, when it ran last on this thread.
  TableMemo& memo = table_memo(query);
  const bool memoized = memo.key == table_memo_key(name_, c, dtype) && memo.rows.size() == static_cast<std::size_t>(rows);
  Tensor out = g;  // the pass-through features' gradient is the upstream one
  for (long r = 0; r < rows; ++r) {
    PositionTable t = memoized ? std::move(memo.rows[static_cast<std::size_t>(r)])
                               : table(f, c, dtype, query ? c.query_position(r) : c.key_position(r),
                                       static_cast<double>(c.centre()), query);
    if (bug != BackwardBug::untransposed)
      for (double& s : t.sin) s = -s;
    if (bug == BackwardBug::key_scale_not_inverted && !query)
      for (double& s : t.scale) s = 1.0 / s;
    for (long l = 0; l < lead; ++l) {
      const double* x = g.row(static_cast<std::size_t>(l * rows + r));
      double* y = out.row(static_cast<std::size_t>(l * rows + r));
      for (long j = 0; j < c.pairs(); ++j) {
        const long a = c.pair_a(j), b = c.pair_b(j);
        const PairOut o = acc ? rotate_pair_in(*acc, dtype, x[a], x[b], t.cos[j], t.sin[j], t.scale[j])
                              : rotate_pair(recipe_, dtype, x[a], x[b], t.cos[j], t.sin[j], t.scale[j]);
        y[a] = o.a;
        y[b] = o.b;
      }
      if (bug == BackwardBug::passthrough_scaled) {
        for (long i = c.rotary(); i < c.head_dim; ++i)
          y[i] = round_to(dtype, x[i] * t.scale[static_cast<std::size_t>((i - c.rotary()) % c.pairs())]);
      }
    }
  }
  memo.key.clear();
  memo.rows.clear();
  return query ? out : memory_rows(c, std::move(out), bug);
}

CandidateOutput RecipeCandidate::run_backward(const Case& c, DType dtype, const Tensor& /*q_in*/,
                                              const Tensor& /*k_in*/, const Tensor& g_q,
                                              const Tensor& g_k) {
  if (c.packed) {
    auto [dq, dk] = map_sequences(c, g_q, g_k, [&](const Case& one, long, const Tensor& gq, const Tensor& gk) {
      CandidateOutput o = run_backward(one, dtype, gq, gk, gq, gk);
      return std::pair{std::move(o.q_out), std::move(o.k_out)};
    });
    const std::string name(dtype_name(dtype));
    return CandidateOutput{std::move(dq), std::move(dk), name, name};
  }
  // Linear in q and k: the gradients do not depend on the inputs.
  const std::string name(dtype_name(dtype));
  return CandidateOutput{backward_rows(c, dtype, g_q, true), backward_rows(c, dtype, g_k, false),
                         name, name};
}

}  // namespace xposcheck::candidates
