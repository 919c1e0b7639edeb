#pragma once
// SPEC section 1 in a multiprecision number type T (a Boost.Multiprecision binary
// float), forward and backward. Private to the reference library and included by one
// of its translation units only, so the Boost templates are compiled once there (the
// gradient test includes it too, to differentiate the unrounded forward).
#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

#include "xposcheck/reference/case.hpp"
#include "xposcheck/reference/golden.hpp"
#include "xposcheck/reference/tables.hpp"
#include "direction.hpp"
#include "fast.hpp"

namespace xposcheck::exact {

// The double nearest to x (Boost's conversion rounds to nearest; overflow gives inf).
template <class T>
double to_double(const T& x) {
  return x.template convert_to<double>();
}

// x as hi + lo: hi the nearest double, lo the nearest double to the remainder.
template <class T>
DD to_dd(const T& x) {
  const double hi = to_double(x);
  if (!std::isfinite(hi)) return {hi, 0.0};
  return {hi, to_double(T(x - hi))};
}

// ln theta' where theta' = theta * f^(R/(R-2)), exactly theta when f == 1 (then R
// may be 2).
template <class T>
T log_theta_prime(const Case& c) {
  T theta_p = T(c.base);
  if (c.base_rescale != 1.0)
    theta_p *= pow(T(c.base_rescale), T(c.rotary()) / T(c.rotary() - 2));
  return log(theta_p);
}

// omega_j / alpha = theta'^(-2j/R) / alpha.
template <class T>
T omega(const Case& c, const T& log_theta_p, long j) {
  return exp(-T(2 * j) / T(c.rotary()) * log_theta_p) / T(c.interpolation);
}

// ln(zeta_j) / B, 0 when xpos is off. zeta_j = (2j + 0.4 R) / (1.4 R) = (10j + 2R) / (7R)
// is taken as the exact rational, not with 0.4 rounded to binary.
template <class T>
T log_zeta(const Case& c, long j) {
  if (!c.xpos) return T(0);
  const T zeta = T(10 * j + 2 * c.rotary()) / T(7 * c.rotary());
  return log(zeta) / T(c.scale_base);
}

// The per-frequency constants of a case.
template <class T>
struct Frequencies {
  std::vector<T> omega;     // omega_j / alpha
  std::vector<T> log_zeta;  // ln(zeta_j) / B
  T centre;

  explicit Frequencies(const Case& c) : centre(c.centre()) {
    const T log_theta_p = log_theta_prime<T>(c);
    for (long j = 0; j < c.pairs(); ++j) {
      omega.push_back(exact::omega(c, log_theta_p, j));
      log_zeta.push_back(exact::log_zeta<T>(c, j));
    }
  }
};

// cos phi, sin phi, sigma and 1/sigma of one (position, pair).
template <class T>
struct Rotation {
  T cos, sin, scale, inv_scale;
};

template <class T>
Rotation<T> rotation(const Frequencies<T>& f, long p, long j) {
  const T phi = T(p) * f.omega[j];
  const T e = (T(p) - f.centre) * f.log_zeta[j];
  return {cos(phi), sin(phi), exp(e), exp(T(-e))};
}

// The rotations of every position of the case, first_key_position()..last_position(),
// pair-minor: shared by all heads and by queries and keys.
template <class T>
std::vector<Rotation<T>> rotations(const Case& c) {
  const Frequencies<T> freq(c);
  std::vector<Rotation<T>> rot;
  // Every position of the range once (-M..N-1), shared by all heads, queries and keys.
  for (long p = c.lowest_position(); p <= c.highest_position(); ++p)
    for (long j = 0; j < c.pairs(); ++j) rot.push_back(rotation(freq, p, j));
  return rot;
}

// One output row: forward, out[a] = (x[a] cos - x[b] sin) sigma^e and out[b] = (x[b] cos
// + x[a] sin) sigma^e for every pair; backward, the same with sin negated (the
// transpose). Then the pass-through features copied. X is double, or T for the
// perturbed inputs of a finite difference.
template <class T, class X>
void rotate_row(const Case& c, const X* x, const Rotation<T>* rot, bool query, Direction dir,
                T* out) {
  for (long j = 0; j < c.pairs(); ++j) {
    const long a = c.pair_a(j), b = c.pair_b(j);
    const T& s = query ? rot[j].scale : rot[j].inv_scale;
    const T sin = dir == Direction::forward ? rot[j].sin : T(-rot[j].sin);
    out[a] = (T(x[a]) * rot[j].cos - T(x[b]) * sin) * s;
    out[b] = (T(x[b]) * rot[j].cos + T(x[a]) * sin) * s;
  }
  for (long i = c.rotary(); i < c.head_dim; ++i) out[i] = T(x[i]);
}

// Outputs of every row of one tensor ([batch, heads, rows, D]) in T, row-major; rot as
// rotations() gives it.
template <class T>
std::vector<T> rotate_tensor(const Case& c, const Tensor& in, bool query, Direction dir,
                             const std::vector<Rotation<T>>& rot) {
  const long d = c.head_dim, rows = static_cast<long>(in.rows());
  const long per_head = query ? c.seq_len : c.key_rows();
  std::vector<T> out(in.data.size());
  for (long r = 0; r < rows; ++r) {
    const long i = r % per_head;
    const long p = query ? c.query_position(i) : c.key_position(i);
    rotate_row(c, in.row(r), &rot[(p - c.lowest_position()) * c.pairs()], query, dir,
               &out[r * d]);
  }
  return out;
}

// logits[b, h, i, n] = sum_d q[b, h, rows[i], d] k[b, h, n, d] in T, rounded once.
template <class T>
Tensor exact_logits(const Case& c, const std::vector<T>& q, const std::vector<T>& k,
                    const std::vector<long>& rows) {
  const std::size_t d = c.head_dim, n_q = c.seq_len, n_k = c.key_rows();
  const std::size_t heads = c.batch * c.heads;
  Tensor out(Shape{std::size_t(c.batch), std::size_t(c.heads), rows.size(), n_k});
  double* o = out.data.data();
  for (std::size_t h = 0; h < heads; ++h)
    for (long m : rows)
      for (std::size_t n = 0; n < n_k; ++n) {
        const T* qr = &q[(h * n_q + m) * d];
        const T* kr = &k[(h * n_k + n) * d];
        T sum = 0;
        for (std::size_t i = 0; i < d; ++i) sum += qr[i] * kr[i];
        *o++ = to_double(sum);
      }
  return out;
}

template <class T>
Values rounded(const std::vector<T>& v) {
  Values out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = to_double(v[i]);
  return out;
}

template <class T>
Golden golden(const Case& c, const Tensor& q_in, const Tensor& k_in,
              const GoldenOptions& options) {
  validate(c);
  check_shape("q_in", q_in, c.q_shape());
  check_shape("k_in", k_in, c.k_shape());
  const std::vector<Rotation<T>> rot = rotations<T>(c);
  const std::vector<T> q = rotate_tensor(c, q_in, true, Direction::forward, rot);
  const std::vector<T> k = rotate_tensor(c, k_in, false, Direction::forward, rot);
  Golden g;
  g.q_out = Tensor(c.q_shape(), rounded(q));
  g.k_out = Tensor(c.k_shape(), rounded(k));
  if (options.logits) {
    g.logit_rows = chosen_logit_rows(c, options);
    g.logits = exact_logits(c, q, k, g.logit_rows);
  }
  return g;
}

template <class T>
GoldenGradients gradients(const Case& c, const Tensor& g_q, const Tensor& g_k) {
  validate(c);
  check_shape("g_q", g_q, c.q_shape());
  check_shape("g_k", g_k, c.k_shape());
  const std::vector<Rotation<T>> rot = rotations<T>(c);
  return {Tensor(c.q_shape(), rounded(rotate_tensor(c, g_q, true, Direction::backward, rot))),
          Tensor(c.k_shape(), rounded(rotate_tensor(c, g_k, false, Direction::backward, rot)))};
}

}  // namespace xposcheck::exact
