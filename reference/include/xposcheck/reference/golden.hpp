#pragma once
// Golden outputs of SPEC section 1: q_out, k_out and logits as fp64, and the golden
// gradients of the inputs (the backward pass; docs/gradients.md).
#include <cstddef>
#include <vector>

#include "xposcheck/reference/case.hpp"
#include "xposcheck/reference/tensor.hpp"

namespace xposcheck {

// The default sample of logit rows for golden outputs kept for their own sake
// (`xposcheck golden`): computed once and read by people and other tools, so more
// rows than a sweep compares per case (kSweepLogitRows in harness/sweep.hpp).
inline constexpr std::size_t kGoldenLogitRows = 512;

struct GoldenOptions {
  GoldenOptions() = default;
  GoldenOptions(bool with_logits, std::size_t max_rows) : logits(with_logits), max_logit_rows(max_rows) {}

  bool logits = true;
  // Above this many query rows, logits are computed for a deterministic sample of
  // rows (see logit_rows); 0 means every row.
  std::size_t max_logit_rows = kGoldenLogitRows;
  // When not empty: exactly these query rows (each in 0..N-1), instead of a sample.
  std::vector<long> rows;
  // When not empty (one per row of `rows`): the keys each row's logits need, as
  // logits_of's `visible`; the others may be left 0.
  std::vector<long> visible_keys;
  // The route of golden_fast's logits. True: Dot2 over the double-double outputs up to
  // 2^24 multiply-adds (within 1 ulp of sum |q k|), the values the golden command
  // publishes. False: plain fp64 products of the rounded outputs at every size (about
  // (D + 2) 2^-53 sum |q k|), 2^-30 below any dtype's tolerance and what a sweep judges
  // by, at a fraction of the cost (reference/README.md, "Logits").
  bool double_double_logits = true;
  // The rounding of golden_fast's outputs. True: each the double nearest its exact value
  // but where that lies within about 2^-100 of the pair magnitude of a rounding
  // boundary (within 1 ulp of the pair magnitude), the values the golden command
  // publishes. False: one fma and one product from the tables' high words, within 5 ulps
  // of the pair magnitude, 2^-26 of an fp32 ulp: what a sweep judges by, at a fraction
  // of the cost (reference/README.md, "Outputs").
  bool correctly_rounded = true;
};

// The query rows whose logits are computed: all of 0..N-1 when N <= max_rows (or
// max_rows == 0); otherwise max_rows rows spread evenly over 0..N-1, always holding
// the first and last row: row i = floor(i * (N-1) / (max_rows-1)). (max_rows == 1
// with N > 1 gives row 0 alone.)
std::vector<long> logit_rows(long seq_len, std::size_t max_rows);

// options.rows when given (std::invalid_argument for a row outside 0..N-1), else
// logit_rows(N, options.max_logit_rows).
std::vector<long> chosen_logit_rows(const Case& c, const GoldenOptions& options);

struct Golden {
  Tensor q_out;                 // [batch, heads, N, D]
  Tensor k_out;                 // [batch, heads, M+N, D]
  Tensor logits;                // [batch, heads, rows.size(), M+N]; empty when not asked
  std::vector<long> logit_rows; // which query rows the logits hold
};

// q_in [batch, heads, N, D] and k_in [batch, heads, M+N, D] hold the (dtype-rounded)
// inputs. Both paths agree to within 1 fp64 ulp of every pair magnitude. Logits: within
// 1 ulp of sum |q k| for golden_exact and, up to batch*heads*rows*(M+N)*D = 2^24, for
// golden_fast; above that golden_fast uses logits_of on its fp64 outputs (about
// (D + 2) 2^-53 sum |q k| at worst). A packed batch (Case::packed) gets each sequence's
// outputs as its own case's, and no logits: those across sequences mean nothing, and
// each sequence's are its own case's. Throws InvalidParameter for an invalid case and
// std::invalid_argument naming the tensor for a wrong input shape.
Golden golden_fast(const Case& c, const Tensor& q_in, const Tensor& k_in,
                   const GoldenOptions& options = {});
// Boost.Multiprecision, 128-bit binary significand, element by element.
Golden golden_exact(const Case& c, const Tensor& q_in, const Tensor& k_in,
                    const GoldenOptions& options = {});

// The gradients of a loss with respect to q_in and k_in, given its gradients g_q and g_k
// with respect to q_out and k_out. Every map of SPEC section 1 is linear in its input,
// so these depend on the case and the upstream gradients alone, not on q_in and k_in.
struct GoldenGradients {
  Tensor dq;  // [batch, heads, N, D]
  Tensor dk;  // [batch, heads, M+N, D], memory rows included
};

// For pair (a, b) of a row at position p, with phi, sigma and e as in the forward pass:
// dx[a] = (g[a] cos phi + g[b] sin phi) sigma^e, dx[b] = (g[b] cos phi - g[a] sin phi)
// sigma^e (the transpose: g rotated by -phi, scaled by sigma^e, not by its inverse);
// pass-through features are g itself. Positions, frame and centre are the forward's.
// Both paths agree to within 1 fp64 ulp of every pair magnitude. Throws
// InvalidParameter for an invalid case and std::invalid_argument naming the tensor
// (g_q or g_k) for a wrong shape.
GoldenGradients golden_gradients_fast(const Case& c, const Tensor& g_q, const Tensor& g_k);
GoldenGradients golden_gradients_exact(const Case& c, const Tensor& g_q, const Tensor& g_k);

// logits[b, h, i, n] = sum_d q[b, h, rows[i], d] * k[b, h, n, d] for fp64 q and k,
// each a sum over D in feature order, so a logit is the same whichever rows and keys
// share the call (blocks of keys give the whole tensor's logits); used on candidate
// outputs. With `visible`, row i needs
// only its first (*visible)[i] keys (a stream's queries see the keys cached so far):
// those are exact as without it, the others may be left 0.
Tensor logits_of(const Tensor& q_out, const Tensor& k_out, const std::vector<long>& rows,
                 const std::vector<long>* visible = nullptr);

}  // namespace xposcheck
