#pragma once
// Error measures of the golden tests: outputs in fp64 ulps of the pair magnitude
// (SPEC section 2), logits in fp64 ulps of sum_i |q_i k_i|, always keeping the worst
// element and where it is, so a failure says what went wrong.
#include <cmath>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "xposcheck/reference/case.hpp"
#include "xposcheck/reference/dtype.hpp"
#include "xposcheck/reference/tensor.hpp"

namespace xposcheck::testing {

struct Worst {
  double ulps = 0.0;   // +inf for a pass-through feature that is not bit-exact
  std::string where;   // the worst element, its value, the expected value and the error
  void offer(double u, const std::string& w) {
    if (!(u <= ulps)) {  // NaN counts as worse than anything
      ulps = u;
      where = w;
    }
  }
};

inline std::string element(const char* name, const Shape& s, std::size_t flat, double got,
                           double want, double ulps) {
  std::ostringstream os;
  os.precision(17);
  os << name << "[";
  std::size_t stride = 1;
  std::vector<std::size_t> idx(s.size());
  for (std::size_t d = s.size(); d-- > 0;) {
    idx[d] = (flat / stride) % s[d];
    stride *= s[d];
  }
  for (std::size_t d = 0; d < idx.size(); ++d) os << (d ? ", " : "") << idx[d];
  os << "] = " << got << ", expected " << want << ": " << ulps << " ulps";
  return os.str();
}

// Worst error of got against the reference hi (+ lo when given, for references more
// precise than fp64) in fp64 ulps of the pair magnitude; pass-through features must be
// bit-identical to the reference.
inline Worst compare_outputs(const Case& c, const char* name, const Tensor& got,
                             const Tensor& hi, const std::vector<double>* lo = nullptr) {
  Worst w;
  const long d = c.head_dim, r = c.rotary(), half = r / 2;
  for (std::size_t e = 0; e < got.size(); ++e) {
    const long i = static_cast<long>(e % d);
    const std::size_t base = e - i;
    double ulps;
    if (i >= r) {
      ulps = std::memcmp(&got.data[e], &hi.data[e], sizeof(double)) == 0 ? 0.0 : INFINITY;
    } else {
      const long j = c.layout == Layout::half ? i % half : i / 2;
      const double mag = std::hypot(hi.data[base + c.pair_a(j)], hi.data[base + c.pair_b(j)]);
      const double err = (got.data[e] - hi.data[e]) - (lo ? (*lo)[e] : 0.0);
      ulps = std::fabs(err) / ulp_fp64(mag);
    }
    if (!(ulps <= w.ulps)) w.offer(ulps, element(name, got.shape, e, got.data[e], hi.data[e], ulps));
  }
  return w;
}

// sum_d |q[row, d] k[n, d]| for every logit, from reference outputs.
inline std::vector<double> logit_magnitudes(const Tensor& q, const Tensor& k,
                                            const std::vector<long>& rows) {
  const std::size_t d = q.shape[3], n = q.shape[2], nk = k.shape[2];
  const std::size_t bh = q.shape[0] * q.shape[1];
  std::vector<double> out;
  for (std::size_t h = 0; h < bh; ++h)
    for (long m : rows)
      for (std::size_t key = 0; key < nk; ++key) {
        double s = 0.0;
        for (std::size_t i = 0; i < d; ++i)
          s += std::fabs(q.row(h * n + m)[i] * k.row(h * nk + key)[i]);
        out.push_back(s);
      }
  return out;
}

// Worst logit error in fp64 ulps of sum |q k| (magnitudes from logit_magnitudes).
inline Worst compare_logits(const Tensor& got, const Tensor& hi,
                            const std::vector<double>& magnitudes,
                            const std::vector<double>* lo = nullptr) {
  Worst w;
  if (got.shape != hi.shape) {
    w.ulps = INFINITY;
    w.where = "logits shape " + shape_string(got.shape) + " vs " + shape_string(hi.shape);
    return w;
  }
  for (std::size_t e = 0; e < got.size(); ++e) {
    const double err = (got.data[e] - hi.data[e]) - (lo ? (*lo)[e] : 0.0);
    const double ulps = std::fabs(err) / ulp_fp64(magnitudes[e]);
    if (!(ulps <= w.ulps))
      w.offer(ulps, element("logits", got.shape, e, got.data[e], hi.data[e], ulps));
  }
  return w;
}

}  // namespace xposcheck::testing
