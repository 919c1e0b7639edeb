// The golden backward pass: against central differences of the unrounded 128-bit
// forward, fast against exact, frames and centres, memory rows, pass-through features,
// the vector-Jacobian identity and shape errors.
#include <boost/multiprecision/cpp_bin_float.hpp>
#include <catch2/catch.hpp>
#include <cmath>

#include "exact.hpp"  // white-box: the unrounded forward, to differentiate
#include "golden_compare.hpp"
#include "xposcheck/reference/golden.hpp"
#include "xposcheck/reference/inputs.hpp"

namespace {

using namespace xposcheck;
namespace mp = boost::multiprecision;
// The type golden_exact.cpp computes in.
using Real = mp::number<mp::cpp_bin_float<128, mp::digit_base_2>, mp::et_off>;
using Rot = exact::Rotation<Real>;

Case make(long d, long n, long m) {
  Case c;
  c.head_dim = d;
  c.seq_len = n;
  c.mem_len = m;
  return c;
}

// Layouts, partial rotary, xpos off, rescaled angles, explicit centres, both frames,
// batch and heads, long memory and long segments, a single pair.
std::vector<Case> grid() {
  std::vector<Case> cases;
  for (Layout l : {Layout::half, Layout::interleaved}) {
    Case c = make(8, 5, 3);
    c.layout = l;
    cases.push_back(c);
    c = make(10, 4, 6);
    c.rotary_dim = 6;
    c.layout = l;
    cases.push_back(c);
  }
  Case c = make(8, 5, 3);
  c.xpos = false;
  cases.push_back(c);
  c = make(12, 4, 6);
  c.base_rescale = 3.5;
  c.interpolation = 2.0;
  c.base = 500000.0;
  cases.push_back(c);
  c = make(8, 5, 2);
  c.scale_base = 8.0;  // strong decay, so a wrong exponent shows
  for (long centre : {-40L, 9L}) {
    c.center = centre;
    cases.push_back(c);
  }
  c = make(8, 6, 4);  // the cache frame, centred as torchscale does
  c.scale_base = 16.0;
  c.first_position = 0;
  c.centre_rule = CentreRule::keys_ceil;
  cases.push_back(c);
  c.first_position = 100;
  c.centre_rule = CentreRule::queries_ceil;
  cases.push_back(c);
  c = make(8, 3, 4);
  c.batch = 2;
  c.heads = 3;
  cases.push_back(c);
  cases.push_back(make(8, 3, 3000));
  c = make(4, 2500, 0);
  c.layout = Layout::interleaved;
  cases.push_back(c);
  cases.push_back(make(2, 9, 4));
  return cases;
}

const Tensor& pick(bool query, const Tensor& q, const Tensor& k) { return query ? q : k; }

// d <g, f(x)> / d x[i] for one row by a central difference of the unrounded forward f.
// f is linear in x, so the difference has no truncation error: only the 128-bit
// rounding of f(x +- h), about 2^-128 |f| / h = 2^-98 |f|.
Real central_difference(const Case& c, const double* x, const double* g, const Rot* rot,
                        bool query, long i) {
  const long d = c.head_dim;
  const Real h = ldexp(Real(1), -30);
  std::vector<Real> xp(x, x + d), xm(x, x + d), fp(d), fm(d);
  xp[i] += h;
  xm[i] -= h;
  exact::rotate_row(c, xp.data(), rot, query, Direction::forward, fp.data());
  exact::rotate_row(c, xm.data(), rot, query, Direction::forward, fm.data());
  Real s = 0;
  for (long o = 0; o < d; ++o) s += Real(g[o]) * (fp[o] - fm[o]);
  return s / (2 * h);
}

// Every element of the unrounded backward pass against the central difference, relative
// to its row's gradient norm; golden_gradients_exact must be those values rounded once.
void check_finite_differences(const Case& c, std::uint64_t seed) {
  INFO(case_id(c));
  const Inputs in = generate_inputs(c, seed, DType::fp32);
  const Upstream up = generate_upstream(c, seed, DType::fp32);
  const std::vector<Rot> rot = exact::rotations<Real>(c);
  const GoldenGradients golden = golden_gradients_exact(c, up.g_q, up.g_k);
  const long d = c.head_dim;
  for (bool query : {true, false}) {
    const Tensor &x = pick(query, in.q, in.k), &g = pick(query, up.g_q, up.g_k);
    const Tensor& got = pick(query, golden.dq, golden.dk);
    const auto grad = exact::rotate_tensor(c, g, query, Direction::backward, rot);
    const long per_head = query ? c.seq_len : c.key_rows();
    double worst = 0.0;
    long misrounded = 0;
    for (long r = 0; r < static_cast<long>(x.rows()); ++r) {
      const long p = query ? c.query_position(r % per_head) : c.key_position(r % per_head);
      const Rot* row_rot = &rot[(p - c.first_key_position()) * c.pairs()];
      Real norm2 = 0;
      for (long i = 0; i < d; ++i) norm2 += grad[r * d + i] * grad[r * d + i];
      for (long i = 0; i < d; ++i) {
        const Real fd = central_difference(c, x.row(r), g.row(r), row_rot, query, i);
        const Real err = abs(fd - grad[r * d + i]) / sqrt(norm2);
        worst = std::max(worst, exact::to_double(err));
        misrounded += got.row(r)[i] != exact::to_double(grad[r * d + i]);
      }
    }
    INFO((query ? "dq" : "dk") << ": worst relative difference " << worst);
    CHECK(worst <= 1e-20);
    CHECK(misrounded == 0);
  }
}

}  // namespace

TEST_CASE("golden gradients are the central differences of the exact forward",
          "[golden][gradients]") {
  std::uint64_t seed = 300;
  for (const Case& c : grid()) check_finite_differences(c, ++seed);
}

TEST_CASE("fast and exact golden gradients agree within 1 ulp of the pair magnitude",
          "[golden][gradients]") {
  std::uint64_t seed = 400;
  for (const Case& c : grid())
    for (DType t : {DType::fp32, DType::bf16}) {
      INFO(case_id(c) << " " << dtype_name(t));
      const Upstream up = generate_upstream(c, ++seed, t);
      const GoldenGradients fast = golden_gradients_fast(c, up.g_q, up.g_k);
      const GoldenGradients exact = golden_gradients_exact(c, up.g_q, up.g_k);
      const auto wq = testing::compare_outputs(c, "dq", fast.dq, exact.dq);
      INFO(wq.where);
      CHECK(wq.ulps <= 1.0);
      const auto wk = testing::compare_outputs(c, "dk", fast.dk, exact.dk);
      INFO(wk.where);
      CHECK(wk.ulps <= 1.0);
    }
}
