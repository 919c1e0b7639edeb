#pragma once
// Golden values of a packed batch: each sequence's own, packed like the inputs. The
// logits across sequences mean nothing, so a packed batch's golden has none; the sweep
// compares each sequence's logits as its own case's.
#include "fast.hpp"
#include "xposcheck/reference/golden.hpp"
#include "xposcheck/reference/packed.hpp"

namespace xposcheck {

// Checks the two packed tensors' shapes (named a and b in errors), then maps every
// sequence's rows through of(case, a rows, b rows) -> (first, second) and packs them.
template <class Of>
std::pair<Tensor, Tensor> packed_pair(const Case& c, const char* a_name, const Tensor& a, const char* b_name,
                                      const Tensor& b, Of of) {
  check_shape(a_name, a, c.q_shape());
  check_shape(b_name, b, c.k_shape());
  return map_sequences(c, a, b, [&](const Case& one, long, const Tensor& x, const Tensor& y) { return of(one, x, y); });
}

template <class GoldenOf>
Golden packed_golden(const Case& c, const Tensor& q_in, const Tensor& k_in, GoldenOf golden_of) {
  auto [q_out, k_out] = packed_pair(c, "q_in", q_in, "k_in", k_in, [&](const Case& one, const Tensor& q, const Tensor& k) {
    Golden g = golden_of(one, q, k);
    return std::pair{std::move(g.q_out), std::move(g.k_out)};
  });
  Golden g;
  g.q_out = std::move(q_out);
  g.k_out = std::move(k_out);
  return g;
}

template <class GradientsOf>
GoldenGradients packed_gradients(const Case& c, const Tensor& g_q, const Tensor& g_k, GradientsOf gradients_of) {
  auto [dq, dk] = packed_pair(c, "g_q", g_q, "g_k", g_k, [&](const Case& one, const Tensor& q, const Tensor& k) {
    GoldenGradients g = gradients_of(one, q, k);
    return std::pair{std::move(g.dq), std::move(g.dk)};
  });
  return GoldenGradients{std::move(dq), std::move(dk)};
}

}  // namespace xposcheck
