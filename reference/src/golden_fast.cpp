// golden_fast: SPEC section 1 from the shared double-double tables.
//
// Accuracy: inputs are doubles (exact), cos, sin and sigma^e come from RotaryTables
// with a few 2^-104 of error; every product below is exact (fma TwoProduct) or affects
// only the low word, so hi + lo is within about 2^-100 |(x[a], x[b])| sigma^e of the
// exact output, and the one final rounding makes each element the nearest double except
// when the exact value lies within that distance of a rounding boundary. The result is
// therefore within 1 fp64 ulp of the pair magnitude of the exact path (test_fast_vs_exact
// checks it). Pass-through features are copied.
//
// golden_gradients_fast runs the same kernel backward: the rotation by -phi is the
// forward rotation of (x[a], -x[b]) for out[a] and of (x[b], x[a]) for out[b], and a
// negation is exact, so the accuracy argument above holds for it unchanged.

#include <algorithm>
#include <cmath>
#include <new>
#include <string>

#include "dd.hpp"
#include "direction.hpp"
#include "fast.hpp"
#include "packed_golden.hpp"
#include "parallel.hpp"
#include "xposcheck/reference/golden.hpp"

namespace xposcheck {
namespace {

// hi + lo ~ (u cos - v sin) g with cos, sin, g given as hi/lo words. The lo word is
// not renormalised: the caller either rounds hi + lo or renormalises.
[[gnu::always_inline]] inline void rotate_one(double u, double v, double ch, double cl,
                                              double sh, double sl, double gh, double gl,
                                              double& hi, double& lo) {
  const double p1 = ch * u, e1 = std::fma(ch, u, -p1);
  const double p2 = sh * v, e2 = std::fma(sh, v, -p2);
  const DD t = dd::two_sum(p1, -p2);  // cancellation here is why t keeps both words
  const double tl = t.lo + ((e1 - e2) + std::fma(cl, u, -sl * v));
  const double q = t.hi * gh;
  hi = q;
  lo = std::fma(t.hi, gh, -q) + std::fma(t.hi, gl, tl * gh);
}

// The element hi + lo rounded once. An overflowed scale makes hi infinite and lo NaN;
// the element is then the infinite hi. (A quiet != test: GCC will not if-convert the
// signalling comparisons of isinf under -ftrapping-math, and the loop would stay scalar.)
[[gnu::always_inline]] inline double rounded(double hi, double lo) {
  const double r = hi + lo;
  return r != r ? hi : r;
}

// Either one rounded double per element, or the double-double (out, lo_out); forward,
// or backward (rotated by -phi, the same scale).
template <Layout L, bool Rounded, Direction Dir>
[[gnu::always_inline]] inline void rotate_pairs(const double* x, const RotaryTables::Row& t,
                                                long P, bool query, double* out,
                                                double* lo_out) {
  const double* gh = query ? t.scale_hi : t.inv_hi;
  const double* gl = query ? t.scale_lo : t.inv_lo;
  // Outputs never alias the inputs or the tables.
#pragma GCC ivdep
  for (long j = 0; j < P; ++j) {
    const long a = L == Layout::half ? j : 2 * j;
    const long b = L == Layout::half ? j + P : 2 * j + 1;
    const double xa = x[a], xb = x[b];
    const double va = Dir == Direction::forward ? xb : -xb;  // the rotation's sign of sin
    const double vb = Dir == Direction::forward ? -xa : xa;
    double ha, la, hb, lb;
    rotate_one(xa, va, t.cos_hi[j], t.cos_lo[j], t.sin_hi[j], t.sin_lo[j], gh[j], gl[j], ha, la);
    rotate_one(xb, vb, t.cos_hi[j], t.cos_lo[j], t.sin_hi[j], t.sin_lo[j], gh[j], gl[j], hb, lb);
    if constexpr (Rounded) {
      out[a] = rounded(ha, la);
      out[b] = rounded(hb, lb);
    } else {
      const DD da = dd::fast_two_sum(ha, la), db = dd::fast_two_sum(hb, lb);
      out[a] = da.hi;
      lo_out[a] = da.lo;
      out[b] = db.hi;
      lo_out[b] = db.lo;
    }
  }
}

// The judging route (GoldenOptions::correctly_rounded false): the tables' high words
// alone, one fma for the rotation and one product for the scale. cos and sin are each
// within 2^-53 of their exact values, so the fma is within 3 2^-53 r of
// x[a] cos - x[b] sin (r = |(x[a], x[b])|, and |cos x[a]| + |sin x[b]| <= r), and the
// scale's word and product add 2 2^-53 relative: every element within 5 2^-53 r sigma^e,
// under 5 fp64 ulps of its pair magnitude, 2^-26 of an fp32 ulp (reference/README.md).
// A scale beyond fp64's range gives an infinite or NaN element, as the other route does.
template <Layout L>
[[gnu::always_inline]] inline void rotate_pairs_plain(const double* x, const RotaryTables::Row& t, long P,
                                                      bool query, double* out, double* /*lo_out: none*/) {
  const double* g = query ? t.scale_hi : t.inv_hi;
#pragma GCC ivdep
  for (long j = 0; j < P; ++j) {
    const long a = L == Layout::half ? j : 2 * j;
    const long b = L == Layout::half ? j + P : 2 * j + 1;
    const double xa = x[a], xb = x[b], c = t.cos_hi[j], s = t.sin_hi[j];
    out[a] = std::fma(c, xa, -(s * xb)) * g[j];
    out[b] = std::fma(c, xb, s * xa) * g[j];
  }
}

// Hot loops compiled three times: AVX-512, FMA with AVX, and the baseline ISA, chosen at load
// time; both give identical results because fma is exact either way. `loop` is one of
// the loops above, in parentheses.
#define XPOS_KERNEL(name, loop)                                                                \
  __attribute__((target_clones("arch=x86-64-v4", "fma", "default"))) void name(                \
      const double* x, const RotaryTables::Row& t, long P, bool q, double* o, double* lo) {    \
    loop(x, t, P, q, o, lo);                                                                   \
  }
XPOS_KERNEL(rotate_half_rounded, (rotate_pairs<Layout::half, true, Direction::forward>))
XPOS_KERNEL(rotate_interleaved_rounded, (rotate_pairs<Layout::interleaved, true, Direction::forward>))
XPOS_KERNEL(rotate_half_backward, (rotate_pairs<Layout::half, true, Direction::backward>))
XPOS_KERNEL(rotate_interleaved_backward, (rotate_pairs<Layout::interleaved, true, Direction::backward>))
XPOS_KERNEL(rotate_half_dd, (rotate_pairs<Layout::half, false, Direction::forward>))
XPOS_KERNEL(rotate_interleaved_dd, (rotate_pairs<Layout::interleaved, false, Direction::forward>))
XPOS_KERNEL(rotate_half_plain, rotate_pairs_plain<Layout::half>)
XPOS_KERNEL(rotate_interleaved_plain, rotate_pairs_plain<Layout::interleaved>)
#undef XPOS_KERNEL

using Kernel = void (*)(const double*, const RotaryTables::Row&, long, bool, double*, double*);

// The kernel of a layout, direction and route (the judging route is forward only).
Kernel kernel_for(Layout l, Direction d, bool correctly_rounded) {
  const bool half = l == Layout::half;
  if (d == Direction::backward) return half ? rotate_half_backward : rotate_interleaved_backward;
  if (!correctly_rounded) return half ? rotate_half_plain : rotate_interleaved_plain;
  return half ? rotate_half_rounded : rotate_interleaved_rounded;
}

}  // namespace

void check_shape(const char* name, const Tensor& t, const Shape& expected) {
  if (t.shape != expected || t.data.size() != element_count(expected))
    throw std::invalid_argument(std::string("golden: ") + name + " has shape " +
                                shape_string(t.shape) + ", expected " +
                                shape_string(expected));
}

// Position-parallel: all heads of one position reuse the same table row while it is
// in cache.
void rotate_block(const Case& c, const RotaryTables& t, bool query, long first, long count,
                  const double* in, double* out, Direction dir, bool correctly_rounded) {
  const long P = c.pairs(), R = c.rotary(), D = c.head_dim, bh = c.batch * c.heads;
  const Kernel kernel = kernel_for(c.layout, dir, correctly_rounded);
  parallel_for(count, 16, [&](long begin, long end) {
    for (long i = begin; i < end; ++i) {
      const long p = query ? c.query_position(first + i) : c.key_position(first + i);
      for (long h = 0; h < bh; ++h) {
        const double* x = in + (h * count + i) * D;
        double* o = out + (h * count + i) * D;
        kernel(x, t.row(p), P, query, o, nullptr);
        std::copy(x + R, x + D, o + R);
      }
    }
  });
}

void rotate_dd_row(const Case& c, const RotaryTables& t, bool query, long p, const double* x,
                   double* hi, double* lo) {
  const long R = c.rotary(), D = c.head_dim;
  (c.layout == Layout::half ? rotate_half_dd : rotate_interleaved_dd)(x, t.row(p), c.pairs(),
                                                                       query, hi, lo);
  std::copy(x + R, x + D, hi + R);
  std::fill(lo + R, lo + D, 0.0);
}

void rotate_dd(const Case& c, const RotaryTables& t, const Tensor& in, bool query,
               const std::vector<long>* rows, Values& hi, Values& lo) {
  const long D = c.head_dim;
  const long per_head = query ? c.seq_len : c.key_rows();
  const long kept = rows ? static_cast<long>(rows->size()) : per_head;
  const long count = c.batch * c.heads * kept;
  try {
    // Every element is written below.
    hi = Values(static_cast<std::size_t>(count * D));
    lo = Values(static_cast<std::size_t>(count * D));
  } catch (const std::bad_alloc&) {
    throw_allocation_error(std::string("the double-double golden ") + (query ? "queries" : "keys") + " (" +
                               std::to_string(count) + " rows x " + std::to_string(D) + ")",
                           16.0 * static_cast<double>(count) * static_cast<double>(D));
  }
  parallel_for(count, 64, [&](long begin, long end) {
    for (long r = begin; r < end; ++r) {
      const long i = rows ? (*rows)[static_cast<std::size_t>(r % kept)] : r % kept;
      const long p = query ? c.query_position(i) : c.key_position(i);
      const double* x = in.row(static_cast<std::size_t>(r / kept * per_head + i));
      rotate_dd_row(c, t, query, p, x, &hi[r * D], &lo[r * D]);
    }
  });
}

Golden golden_fast(const Case& c, const Tensor& q_in, const Tensor& k_in,
                   const GoldenOptions& options) {
  validate(c);
  if (c.packed) return packed_golden(c, q_in, k_in, [&options](const Case& one, const Tensor& q, const Tensor& k) {
    GoldenOptions outputs_only(false, 0);
    outputs_only.correctly_rounded = options.correctly_rounded;
    return golden_fast(one, q, k, outputs_only);
  });
  check_shape("q_in", q_in, c.q_shape());
  check_shape("k_in", k_in, c.k_shape());
  const auto tables = shared_tables(c);
  Golden g;
  g.q_out = Tensor::unfilled(c.q_shape());
  g.k_out = Tensor::unfilled(c.k_shape());
  rotate_block(c, *tables, true, 0, c.seq_len, q_in.data.data(), g.q_out.data.data(), Direction::forward,
               options.correctly_rounded);
  rotate_block(c, *tables, false, 0, c.key_rows(), k_in.data.data(), g.k_out.data.data(), Direction::forward,
               options.correctly_rounded);
  if (options.logits) {
    g.logit_rows = chosen_logit_rows(c, options);
    const bool causal = !options.visible_keys.empty() && options.visible_keys.size() == g.logit_rows.size();
    g.logits = fast_logits(c, *tables, q_in, k_in, g.q_out, g.k_out, g.logit_rows, options,
                           causal ? &options.visible_keys : nullptr);
  }
  return g;
}

GoldenGradients golden_gradients_fast(const Case& c, const Tensor& g_q, const Tensor& g_k) {
  validate(c);
  if (c.packed) return packed_gradients(c, g_q, g_k, golden_gradients_fast);
  check_shape("g_q", g_q, c.q_shape());
  check_shape("g_k", g_k, c.k_shape());
  const auto tables = shared_tables(c);
  GoldenGradients g{Tensor::unfilled(c.q_shape()), Tensor::unfilled(c.k_shape())};
  rotate_block(c, *tables, true, 0, c.seq_len, g_q.data.data(), g.dq.data.data(), Direction::backward);
  rotate_block(c, *tables, false, 0, c.key_rows(), g_k.data.data(), g.dk.data.data(), Direction::backward);
  return g;
}

}  // namespace xposcheck
