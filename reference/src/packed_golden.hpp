#pragma once
// Golden values of a packed batch: each sequence's own, packed like the inputs. The
// logits across sequences mean nothing, so a packed batch's golden has none; the sweep
// compares each sequence's logits as its own case's.
#include "fast.hpp"
#include "xposcheck/reference/golden.hpp"
#include "xposcheck/reference/packed.hpp"

namespace xposcheck {

template <class GoldenOf>
Golden packed_golden(const Case& c, const Tensor& q_in, const Tensor& k_in, GoldenOf golden_of) {
  check_shape("q_in", q_in, c.q_shape());
  check_shape("k_in", k_in, c.k_shape());
  auto [q_out, k_out] = map_sequences(c, q_in, k_in, [&](const Case& one, long, const Tensor& q, const Tensor& k) {
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
  check_shape("g_q", g_q, c.q_shape());
  check_shape("g_k", g_k, c.k_shape());
  auto [dq, dk] = map_sequences(c, g_q, g_k, [&](const Case& one, long, const Tensor& q, const Tensor& k) {
    GoldenGradients g = gradients_of(one, q, k);
    return std::pair{std::move(g.dq), std::move(g.dk)};
  });
  return GoldenGradients{std::move(dq), std::move(dk)};
}

}  // namespace xposcheck
