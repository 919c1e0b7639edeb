// Logits: the row sample, the plain product used on candidate outputs and by the fast
// golden path for large cases, and the double-double route for small ones.
//
// Accuracy of the fast golden logits, with S = sum_i |q_i k_i| over the exact outputs:
// - small cases (batch*heads*rows*(M+N)*D <= 2^24), unless the options ask for the
//   plain route throughout: dot products of the double-double
//   outputs (before their rounding) by Dot2 (twice the working precision, rounded
//   once); error below 0.5 ulp(logit) + (D 2^-53)^2 S + D 2^-100 S, i.e. within
//   1 fp64 ulp of S.
// - large cases: plain dot products of the rounded fp64 outputs (fma, in feature
//   order); each output carries up to 2^-53 relative error and the summation up to
//   about D 2^-53 S, so the bound is
//   about (D + 2) 2^-53 S (typically sqrt(D) 2^-53 S): a few hundred fp64 ulps of S at
//   D = 128, still 2^-30 below any candidate tolerance in fp32/bf16/fp16.
#include <fmt/format.h>
#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>
#include <string>


#include "fast.hpp"
#include "parallel.hpp"
#include "xposcheck/reference/golden.hpp"

namespace xposcheck {
namespace {

// Above this many multiply-adds the double-double route gives way to plain dot products.
constexpr double kDDWork = double(1 << 24);

// Keys per block: the vector lanes of the dot-product kernel.
constexpr long kLanes = 8;

// One head's keys, double-double, in blocks of kLanes keys stored feature-major
// ([block][D][lane]), the last block padded with zeros: a block's lanes load
// contiguously, and a block is one contiguous stretch of memory.
struct KeyBlocks {
  long d = 0;
  Values hi, lo;
  const double* hi_of(long block) const { return &hi[static_cast<std::size_t>(block * d * kLanes)]; }
  const double* lo_of(long block) const { return &lo[static_cast<std::size_t>(block * d * kLanes)]; }
};

KeyBlocks key_blocks(const double* kh, const double* kl, long keys, long d) {
  KeyBlocks t;
  t.d = d;
  const long blocks = (keys + kLanes - 1) / kLanes;
  const std::size_t size = static_cast<std::size_t>(blocks * d * kLanes);
  t.hi = Values(size);
  t.lo = Values(size);
  if (keys % kLanes != 0) {  // the lanes past the last key: zeros
    std::fill(t.hi.end() - d * kLanes, t.hi.end(), 0.0);
    std::fill(t.lo.end() - d * kLanes, t.lo.end(), 0.0);
  }
  for (long key = 0; key < keys; ++key) {
    const long base = key / kLanes * d * kLanes + key % kLanes;
    for (long i = 0; i < d; ++i) {
      t.hi[static_cast<std::size_t>(base + i * kLanes)] = kh[key * d + i];
      t.lo[static_cast<std::size_t>(base + i * kLanes)] = kl[key * d + i];
    }
  }
  return t;
}

// Dot2 of Ogita, Rump and Oishi (2005) for kLanes keys at once: the running sum s
// through TwoSum, every rounding error (of the hi products, exact by fma, and of the
// sums) and the cross terms hi*lo + lo*hi gathered in c, then one rounding of s + c.
// The result is within 0.5 ulp of the logit plus (D 2^-53)^2 S, S = sum_i |q_i k_i|;
// lo*lo (2^-106 S) is dropped. Lanes are independent, so the loop vectorizes.
__attribute__((target_clones("arch=x86-64-v4", "fma", "default"))) void dot2_block(
    const double* qh, const double* ql, const double* kh, const double* kl, long d, double* out) {
  double s[kLanes] = {}, c[kLanes] = {};
  for (long i = 0; i < d; ++i) {
    const double a = qh[i], al = ql[i];
    const double* bh = kh + i * kLanes;
    const double* bl = kl + i * kLanes;
    for (long l = 0; l < kLanes; ++l) {
      const double p = a * bh[l];
      const double pe = std::fma(a, bh[l], -p);
      const double cross = std::fma(a, bl[l], al * bh[l]);
      const double t = s[l] + p;
      const double z = t - s[l];
      const double se = (s[l] - (t - z)) + (p - z);
      s[l] = t;
      c[l] += (pe + se) + cross;
    }
  }
  for (long l = 0; l < kLanes; ++l) out[l] = s[l] + c[l];
}

// Logits of the double-double outputs (before their rounding) of the sampled query
// rows against every key, one key block at a time so that the block stays in cache
// while every query row passes over it.
Tensor dd_logits(const Case& c, const RotaryTables& t, const Tensor& q_in,
                 const Tensor& k_in, const std::vector<long>& rows) {
  Values qh, ql, kh, kl;
  rotate_dd(c, t, q_in, true, &rows, qh, ql);
  rotate_dd(c, t, k_in, false, nullptr, kh, kl);
  const long d = c.head_dim, keys = c.key_rows(), bh = c.batch * c.heads;
  const long nr = static_cast<long>(rows.size());
  Tensor out = Tensor::unfilled(Shape{std::size_t(c.batch), std::size_t(c.heads), rows.size(), std::size_t(keys)});
  for (long h = 0; h < bh; ++h)
    dd_logits_head(&qh[h * nr * d], &ql[h * nr * d], nr, &kh[h * keys * d], &kl[h * keys * d],
                   keys, d, out.row(static_cast<std::size_t>(h * nr)), keys);
  return out;
}

void check_logit_inputs(const Tensor& q, const Tensor& k, const std::vector<long>& rows) {
  const bool ok = q.rank() == 4 && k.rank() == 4 && q.shape[0] == k.shape[0] &&
                  q.shape[1] == k.shape[1] && q.shape[3] == k.shape[3];
  if (!ok)
    throw std::invalid_argument("logits_of: q " + shape_string(q.shape) + " and k " +
                                shape_string(k.shape) +
                                " are not [batch, heads, rows, D] with equal batch, heads, D");
  for (long r : rows)
    if (r < 0 || static_cast<std::size_t>(r) >= q.shape[2])
      throw std::invalid_argument("logits_of: query row " + std::to_string(r) +
                                  " outside 0.." + std::to_string(q.shape[2]) + ")");
}

}  // namespace

std::vector<long> logit_rows(long seq_len, std::size_t max_rows) {
  std::vector<long> rows;
  const auto n = static_cast<std::size_t>(std::max(0L, seq_len));
  if (max_rows == 0 || n <= max_rows) {
    for (long m = 0; m < seq_len; ++m) rows.push_back(m);
  } else if (max_rows == 1) {
    rows.push_back(0);  // the formula's i = 0 term; there is no room for the last row
  } else {
    for (std::size_t i = 0; i < max_rows; ++i)
      rows.push_back(static_cast<long>(i * (n - 1) / (max_rows - 1)));
  }
  return rows;
}

std::vector<long> chosen_logit_rows(const Case& c, const GoldenOptions& options) {
  if (options.rows.empty()) return logit_rows(c.seq_len, options.max_logit_rows);
  for (long r : options.rows) {
    if (r < 0 || r >= c.seq_len)
      throw std::invalid_argument(fmt::format("logit row {} is outside the query rows 0..{}", r, c.seq_len - 1));
  }
  return options.rows;
}

void dd_logits_head(const double* qh, const double* ql, long nr, const double* kh,
                    const double* kl, long keys, long d, double* out, long stride) {
  const KeyBlocks k = key_blocks(kh, kl, keys, d);
  const long blocks = (keys + kLanes - 1) / kLanes;
  parallel_for(blocks, 16, [&](long begin, long end) {
    double lanes[kLanes];
    for (long b = begin; b < end; ++b) {
      const long first = b * kLanes, n = std::min(kLanes, keys - first);
      for (long r = 0; r < nr; ++r) {
        dot2_block(&qh[r * d], &ql[r * d], k.hi_of(b), k.lo_of(b), d, lanes);
        std::copy_n(lanes, n, out + r * stride + first);
      }
    }
  });
}

namespace {

// Plain dot products of kRows query rows with kLanes keys stored feature-major
// ([D][lane]): every logit a sum over D in order from feature 0, one fma per term. Its
// value then depends on its query row and key alone, never on which rows or keys share
// the call (BLAS promises no such thing: its edge kernels add in other orders), so
// blocks of keys give the whole tensor's logits bit for bit. Rows and lanes are
// independent chains, so the loop vectorizes; the row count is a template argument so
// that the kRows x kLanes sums stay in registers (with a run-time count the compiler
// kept them in memory, a store and a load per fma: a third of the speed).
constexpr long kRowGroup = 4;

template <long kRows>
__attribute__((target_clones("arch=x86-64-v4", "fma", "default"))) void dot_rows(
    const double* q, const double* kt, long d, double* out, long stride, long n) {
  double s[kRows][kLanes] = {};
  for (long i = 0; i < d; ++i) {
    const double* b = kt + i * kLanes;
#pragma GCC unroll 4
    for (long r = 0; r < kRows; ++r) {
      const double a = q[r * d + i];
#pragma GCC unroll 8
      for (long l = 0; l < kLanes; ++l) s[r][l] = std::fma(a, b[l], s[r][l]);
    }
  }
  for (long r = 0; r < kRows; ++r) std::copy_n(s[r], n, out + r * stride);
}

void dot_group(const double* q, long rows, const double* kt, long d, double* out, long stride, long n) {
  switch (rows) {
    case 1: return dot_rows<1>(q, kt, d, out, stride, n);
    case 2: return dot_rows<2>(q, kt, d, out, stride, n);
    case 3: return dot_rows<3>(q, kt, d, out, stride, n);
    default: return dot_rows<kRowGroup>(q, kt, d, out, stride, n);
  }
}

}  // namespace

void plain_logits_head(const double* q, long nr, const double* k, long keys, long d, double* out, long stride) {
  if (nr == 0 || keys == 0 || d == 0) return;
  const long blocks = (keys + kLanes - 1) / kLanes;
  parallel_for(blocks, 64, [&](long begin, long end) {
    std::vector<double> kt(static_cast<std::size_t>(d * kLanes));
    for (long blk = begin; blk < end; ++blk) {
      const long first = blk * kLanes, n = std::min(kLanes, keys - first);
      if (n < kLanes) std::fill(kt.begin(), kt.end(), 0.0);  // lanes past the last key
      for (long l = 0; l < n; ++l)
        for (long i = 0; i < d; ++i) kt[static_cast<std::size_t>(i * kLanes + l)] = k[(first + l) * d + i];
      for (long r = 0; r < nr; r += kRowGroup)
        dot_group(q + r * d, std::min(kRowGroup, nr - r), kt.data(), d, out + r * stride + first, stride, n);
    }
  });
}

namespace {

// Sampled rows per product when each sees its own number of keys: consecutive rows of
// a causal sample see about as many keys, so the products cover little more than the
// triangle the rows need.
constexpr std::size_t kRowsPerChunk = 32;

void check_visible(const std::vector<long>* visible, std::size_t rows, std::size_t keys) {
  if (!visible) return;
  if (visible->size() != rows)
    throw std::invalid_argument(fmt::format("logits_of: {} visible-key counts for {} rows", visible->size(), rows));
  for (long v : *visible)
    if (v < 0 || static_cast<std::size_t>(v) > keys)
      throw std::invalid_argument(fmt::format("logits_of: {} visible keys of {}", v, keys));
}

}  // namespace

Tensor logits_of(const Tensor& q_out, const Tensor& k_out, const std::vector<long>& rows,
                 const std::vector<long>* visible) {
  check_logit_inputs(q_out, k_out, rows);
  const std::size_t bh = q_out.shape[0] * q_out.shape[1], n = q_out.shape[2];
  const std::size_t k = k_out.shape[2], d = q_out.shape[3], nr = rows.size();
  check_visible(visible, nr, k);
  Tensor out(Shape{q_out.shape[0], q_out.shape[1], nr, k});
  if (nr == 0 || k == 0 || d == 0) return out;
  const std::size_t chunk = visible ? kRowsPerChunk : nr;
  std::vector<double> q(chunk * d);
  for (std::size_t h = 0; h < bh; ++h) {
    for (std::size_t first = 0; first < nr; first += chunk) {
      const std::size_t count = std::min(chunk, nr - first);
      std::size_t keys = k;
      if (visible) keys = static_cast<std::size_t>(*std::max_element(visible->begin() + first, visible->begin() + first + count));
      for (std::size_t i = 0; i < count; ++i) std::copy_n(q_out.row(h * n + rows[first + i]), d, &q[i * d]);
      if (keys == k) {
        plain_logits_head(q.data(), long(count), k_out.row(h * k), long(k), long(d), out.row(h * nr + first), long(k));
        continue;
      }
      plain_logits_head(q.data(), long(count), k_out.row(h * k), long(keys), long(d), out.row(h * nr + first), long(k));
    }
  }
  return out;
}

bool dd_logits_route(const Case& c, std::size_t rows, const GoldenOptions& options) {
  if (!options.double_double_logits) return false;
  const double work = double(c.batch) * c.heads * double(rows) * c.key_rows() * c.head_dim;
  return work <= kDDWork;
}

Tensor fast_logits(const Case& c, const RotaryTables& t, const Tensor& q_in,
                   const Tensor& k_in, const Tensor& q_out, const Tensor& k_out,
                   const std::vector<long>& rows, const GoldenOptions& options,
                   const std::vector<long>* visible) {
  if (!dd_logits_route(c, rows.size(), options)) return logits_of(q_out, k_out, rows, visible);
  return dd_logits(c, t, q_in, k_in, rows);
}

}  // namespace xposcheck
