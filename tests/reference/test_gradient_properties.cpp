// Properties of the golden backward pass on both paths: it undoes the forward rotation
// in the forward's own frame and centre, memory key rows follow the formula at their
// negative positions, pass-through features are the upstream gradient bit for bit, the
// vector-Jacobian identity holds row by row, and wrong shapes are refused.
#include <boost/multiprecision/cpp_bin_float.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>

#include "golden_compare.hpp"
#include "xposcheck/reference/golden.hpp"
#include "xposcheck/reference/inputs.hpp"
#include "xposcheck/reference/tables.hpp"

namespace {

using namespace xposcheck;
using Quad = boost::multiprecision::cpp_bin_float_quad;
using ForwardFn = Golden (*)(const Case&, const Tensor&, const Tensor&, const GoldenOptions&);
using BackwardFn = GoldenGradients (*)(const Case&, const Tensor&, const Tensor&);
struct Path {
  const char* name;
  ForwardFn forward;
  BackwardFn backward;
};
const Path kPaths[] = {{"fast", golden_fast, golden_gradients_fast},
                       {"exact", golden_exact, golden_gradients_exact}};

Case make(long d, long n, long m) {
  Case c;
  c.head_dim = d;
  c.seq_len = n;
  c.mem_len = m;
  return c;
}

long position(const Case& c, bool query, std::size_t row) {
  const long per_head = query ? c.seq_len : c.key_rows();
  const long i = static_cast<long>(row) % per_head;
  return query ? c.query_position(i) : c.key_position(i);
}

// Worst error, in ulps of the pair magnitude of want, of got against want[pair] =
// x[pair] sigma^(2e): the transpose of a rotation is its inverse, so the backward pass
// of the forward's outputs leaves each pair scaled by sigma^e twice. The sigma of the
// case's own tables: a frame or centre other than the forward's shows as a wrong angle
// or scale.
double worst_round_trip(const Case& c, bool query, const Tensor& x, const Tensor& got) {
  const auto t = shared_tables(c);
  double worst = 0.0;
  for (std::size_t r = 0; r < x.rows(); ++r) {
    const long p = position(c, query, r);
    for (long j = 0; j < c.pairs(); ++j) {
      const double s = query ? t->scale(p, j).hi : t->inv_scale(p, j).hi;
      const long a = c.pair_a(j), b = c.pair_b(j);
      const double wa = x.row(r)[a] * s * s, wb = x.row(r)[b] * s * s;
      const double u = ulp_fp64(std::hypot(wa, wb));
      worst = std::max({worst, std::fabs(got.row(r)[a] - wa) / u, std::fabs(got.row(r)[b] - wb) / u});
    }
  }
  return worst;
}

// Cases in the segment frame, the cache frame and another, with explicit centres.
std::vector<Case> frames() {
  Case c = make(8, 6, 5);
  c.scale_base = 16.0;
  std::vector<Case> out{c};
  c.first_position = 0;
  c.centre_rule = CentreRule::keys_ceil;  // torchscale in the cache frame
  out.push_back(c);
  c.first_position = 37;
  c.centre_rule = CentreRule::keys_floor;
  out.push_back(c);
  c.center = -12;
  c.layout = Layout::interleaved;
  out.push_back(c);
  return out;
}

}  // namespace

TEST_CASE("golden gradients undo the forward rotation in the forward's frame",
          "[golden][gradients]") {
  for (const Case& c : frames()) {
    const Inputs in = generate_inputs(c, 11, DType::fp32);
    for (const Path& path : kPaths) {
      INFO(case_id(c) << " first position " << c.first_key_position() << " centre "
                      << c.centre() << " " << path.name);
      const Golden f = path.forward(c, in.q, in.k, {false, 0});
      const GoldenGradients b = path.backward(c, f.q_out, f.k_out);
      // Forward and backward each round once, then the test's s * s: a few ulps.
      CHECK(worst_round_trip(c, true, in.q, b.dq) <= 4.0);
      CHECK(worst_round_trip(c, false, in.k, b.dk) <= 4.0);
    }
  }
  // The control: the backward pass of another frame does not undo it.
  const Case segment = frames()[0], cache = frames()[1];
  const Inputs in = generate_inputs(cache, 11, DType::fp32);
  const Golden f = golden_fast(cache, in.q, in.k, {false, 0});
  const GoldenGradients wrong = golden_gradients_fast(segment, f.q_out, f.k_out);
  CHECK(worst_round_trip(cache, true, in.q, wrong.dq) > 1e6);
  CHECK(worst_round_trip(cache, false, in.k, wrong.dk) > 1e6);
}

TEST_CASE("memory key rows get the backward pass at their own positions",
          "[golden][gradients]") {
  Case c = make(8, 3, 4);
  c.scale_base = 8.0;  // sigma far from 1, so an inverted scale shows
  const Upstream up = generate_upstream(c, 5, DType::fp32);
  const auto t = shared_tables(c);
  for (const Path& path : kPaths) {
    INFO(path.name);
    const GoldenGradients g = path.backward(c, up.g_q, up.g_k);
    REQUIRE(g.dk.shape == (Shape{1, 1, 7, 8}));
    double worst = 0.0;
    for (long n = 0; n < c.mem_len; ++n) {
      const long p = c.key_position(n);  // -4..-1
      const double* x = up.g_k.row(n);
      for (long j = 0; j < c.pairs(); ++j) {
        const long a = c.pair_a(j), b = c.pair_b(j);
        const double cs = t->cos(p, j).hi, sn = t->sin(p, j).hi, s = t->inv_scale(p, j).hi;
        const double wa = (x[a] * cs + x[b] * sn) * s, wb = (x[b] * cs - x[a] * sn) * s;
        const double u = ulp_fp64(std::hypot(wa, wb));
        worst = std::max({worst, std::fabs(g.dk.row(n)[a] - wa) / u,
                          std::fabs(g.dk.row(n)[b] - wb) / u});
      }
    }
    CHECK(worst <= 4.0);  // the test's own fp64 arithmetic rounds a few times
  }
}

TEST_CASE("pass-through features of the gradients are the upstream gradient, bit for bit",
          "[golden][gradients]") {
  Case c = make(10, 4, 3);
  c.rotary_dim = 6;
  Upstream up = generate_upstream(c, 9, DType::fp16);
  const double specials[] = {-0.0, std::numeric_limits<double>::denorm_min(), 1e300,
                             -std::numeric_limits<double>::infinity()};
  for (std::size_t r = 0; r < 4; ++r) std::copy(specials, specials + 4, up.g_k.row(r) + 6);
  for (const Path& path : kPaths) {
    INFO(path.name);
    const GoldenGradients g = path.backward(c, up.g_q, up.g_k);
    for (const auto& [got, want] : {std::pair{&g.dq, &up.g_q}, std::pair{&g.dk, &up.g_k}})
      for (std::size_t r = 0; r < want->rows(); ++r)
        CHECK(std::memcmp(got->row(r) + 6, want->row(r) + 6, 4 * sizeof(double)) == 0);
    CHECK(std::signbit(g.dk.row(0)[6]));
  }
}

TEST_CASE("<g, f(x)> equals <gradient, x> row by row", "[golden][gradients]") {
  Case c = make(12, 5, 4);
  c.rotary_dim = 8;
  c.heads = 2;
  c.first_position = 0;
  c.centre_rule = CentreRule::keys_ceil;
  c.scale_base = 16.0;
  const Inputs in = generate_inputs(c, 13, DType::bf16);
  const Upstream up = generate_upstream(c, 13, DType::bf16);
  for (const Path& path : kPaths) {
    INFO(path.name);
    const Golden f = path.forward(c, in.q, in.k, {false, 0});
    const GoldenGradients g = path.backward(c, up.g_q, up.g_k);
    double worst = 0.0;  // in units of 2^-52 sum over pairs of |g||f| + |grad||x|
    for (const auto& [x, out, ups, grad] :
         {std::tuple{&in.q, &f.q_out, &up.g_q, &g.dq}, std::tuple{&in.k, &f.k_out, &up.g_k, &g.dk}})
      for (std::size_t r = 0; r < x->rows(); ++r) {
        Quad lhs = 0, rhs = 0;  // exact sums of fp64 products
        double scale = 0.0;
        for (long i = 0; i < c.head_dim; ++i) {
          lhs += Quad(ups->row(r)[i]) * out->row(r)[i];
          rhs += Quad(grad->row(r)[i]) * x->row(r)[i];
        }
        for (long j = 0; j < c.pairs(); ++j) {
          auto mag = [&](const Tensor* t) {
            return std::hypot(t->row(r)[c.pair_a(j)], t->row(r)[c.pair_b(j)]);
          };
          scale += mag(ups) * mag(out) + mag(grad) * mag(x);
        }
        worst = std::max(worst, std::fabs(Quad(lhs - rhs).convert_to<double>()) / (scale * 0x1p-52));
      }
    CHECK(worst <= 2.0);  // each element within 1 ulp of its pair magnitude
  }
}

TEST_CASE("golden gradients reject wrong upstream shapes, naming the tensor",
          "[golden][gradients]") {
  const Case c = make(8, 4, 2);
  const Upstream up = generate_upstream(c, 1, DType::fp32);
  const Tensor wrong_k(Shape{1, 1, 4, 8});  // g_k needs M+N = 6 rows
  const Tensor wrong_q(Shape{1, 2, 4, 8});
  for (const Path& path : kPaths) {
    INFO(path.name);
    CHECK_THROWS_WITH(path.backward(c, up.g_q, wrong_k),
                      Catch::Contains("g_k") && Catch::Contains("[1, 1, 6, 8]") &&
                          Catch::Contains("[1, 1, 4, 8]"));
    CHECK_THROWS_WITH(path.backward(c, wrong_q, up.g_k),
                      Catch::Contains("g_q") && Catch::Contains("[1, 2, 4, 8]"));
    CHECK_THROWS_AS(path.backward(c, up.g_k, up.g_k), std::invalid_argument);
    Case bad = c;
    bad.head_dim = 7;
    CHECK_THROWS_AS(path.backward(bad, up.g_q, up.g_k), InvalidParameter);
  }
}
