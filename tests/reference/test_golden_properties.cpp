// Properties SPEC section 1 implies, checked on both golden paths: relative-position
// logits, norm preservation without xpos, bit-exact pass-through, memory not changing
// the current segment's keys, and the two layouts being one map up to a permutation.
#include <catch2/catch.hpp>

#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <cmath>
#include <cstring>

#include "fast.hpp"
#include "golden_compare.hpp"
#include "xposcheck/reference/golden.hpp"
#include "xposcheck/reference/inputs.hpp"

namespace {

using namespace xposcheck;
using GoldenFn = Golden (*)(const Case&, const Tensor&, const Tensor&, const GoldenOptions&);
const std::pair<const char*, GoldenFn> kPaths[] = {{"fast", golden_fast}, {"exact", golden_exact}};

Case make(long d, long n, long m) {
  Case c;
  c.head_dim = d;
  c.seq_len = n;
  c.mem_len = m;
  return c;
}

bool bit_equal(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// Worst difference of two logit tensors in ulps of sum |q k| (magnitudes of the first).
double logit_diff(const Golden& a, const Golden& b) {
  const auto mags = testing::logit_magnitudes(a.q_out, a.k_out, a.logit_rows);
  const auto w = testing::compare_logits(b.logits, a.logits, mags);
  INFO(w.where);
  return w.ulps;
}

}  // namespace

TEST_CASE("logits do not depend on the centre", "[golden][properties]") {
  Case c = make(16, 9, 11);
  c.scale_base = 16.0;  // strong decay, so a wrong centre would show
  const Inputs in = generate_inputs(c, 21, DType::fp32);
  for (const auto& [name, path] : kPaths) {
    INFO(name);
    const Golden ref = path(c, in.q, in.k, {});
    for (long centre : {-30L, -11L, 0L, 8L, 50L}) {
      Case moved = c;
      moved.center = centre;
      const Golden g = path(moved, in.q, in.k, {});
      INFO("centre " << centre);
      CHECK(logit_diff(ref, g) <= 4.0);
      if (centre != c.centre()) CHECK(g.q_out.data != ref.q_out.data);  // outputs do move
    }
  }
}

TEST_CASE("logits depend only on relative positions", "[golden][properties]") {
  // Case a: queries at 0..3, keys at -6..3. Case b: queries at 0..9, keys at 0..9.
  // Query m of a sits 6 positions below query m + 6 of b, and key n of a 6 below key n
  // of b, so with the same vectors logits a[m, n] == b[m + 6, n].
  Case a = make(8, 4, 6), b = make(8, 10, 0);
  a.scale_base = 32.0;
  b.scale_base = 32.0;
  const Inputs in = generate_inputs(a, 5, DType::fp32);
  Tensor bq(b.q_shape());
  const Tensor& bk = in.k;
  for (long m = 0; m < 4; ++m) std::copy_n(in.q.row(m), 8, bq.row(m + 6));
  for (const auto& [name, path] : kPaths) {
    INFO(name);
    const Golden ga = path(a, in.q, in.k, {}), gb = path(b, bq, bk, {});
    const auto mags = testing::logit_magnitudes(ga.q_out, ga.k_out, ga.logit_rows);
    double worst = 0.0;
    for (long m = 0; m < 4; ++m)
      for (long n = 0; n < 10; ++n) {
        const double d = std::fabs(ga.logits.row(m)[n] - gb.logits.row(m + 6)[n]);
        worst = std::max(worst, d / ulp_fp64(mags[m * 10 + n]));
      }
    CHECK(worst <= 4.0);
  }
}

TEST_CASE("without xpos every rotated pair keeps its norm", "[golden][properties]") {
  Case c = make(12, 7, 300);
  c.xpos = false;
  c.layout = Layout::interleaved;
  const Inputs in = generate_inputs(c, 8, DType::fp32);
  for (const auto& [name, path] : kPaths) {
    INFO(name);
    const Golden g = path(c, in.q, in.k, {});
    double worst = 0.0;
    for (const auto& [x, y] : {std::pair{&in.q, &g.q_out}, std::pair{&in.k, &g.k_out}})
      for (std::size_t r = 0; r < x->rows(); ++r)
        for (long j = 0; j < c.pairs(); ++j) {
          const double before = std::hypot(x->row(r)[c.pair_a(j)], x->row(r)[c.pair_b(j)]);
          const double after = std::hypot(y->row(r)[c.pair_a(j)], y->row(r)[c.pair_b(j)]);
          worst = std::max(worst, std::fabs(after - before) / ulp_fp64(before));
        }
    // Two output roundings and two hypot evaluations: a few ulps at most.
    CHECK(worst <= 4.0);
  }
}

TEST_CASE("features R..D-1 pass through bit-exactly", "[golden][properties]") {
  for (Layout l : {Layout::half, Layout::interleaved}) {
    Case c = make(24, 5, 4);
    c.rotary_dim = 6;
    c.layout = l;
    c.heads = 2;
    const Inputs in = generate_inputs(c, 9, DType::bf16);
    for (const auto& [name, path] : kPaths) {
      INFO(name << " " << layout_name(l));
      const Golden g = path(c, in.q, in.k, {});
      for (const auto& [x, y] : {std::pair{&in.q, &g.q_out}, std::pair{&in.k, &g.k_out}}) {
        bool same = true, rotated = false;
        for (std::size_t e = 0; e < x->size(); ++e) {
          if (static_cast<long>(e % 24) >= 6)
            same = same && bit_equal(x->data[e], y->data[e]);
          else
            rotated = rotated || x->data[e] != y->data[e];
        }
        CHECK(same);
        CHECK(rotated);
      }
    }
  }
}

TEST_CASE("memory does not change the current segment's keys at the same centre",
          "[golden][properties]") {
  Case plain = make(8, 6, 0), mem = make(8, 6, 25);
  plain.center = mem.center = 3;
  const Inputs in = generate_inputs(mem, 13, DType::fp32);
  Tensor k_plain(plain.k_shape());
  for (long n = 0; n < 6; ++n) std::copy_n(in.k.row(25 + n), 8, k_plain.row(n));
  for (const auto& [name, path] : kPaths) {
    INFO(name);
    const Golden with = path(mem, in.q, in.k, {}), without = path(plain, in.q, k_plain, {});
    Tensor current(plain.k_shape());
    for (long n = 0; n < 6; ++n) std::copy_n(with.k_out.row(25 + n), 8, current.row(n));
    // Bit-identical in the exact path; the fast path may use a table over a different
    // range, whose last bits can differ, so it is held to the 1-ulp contract.
    const double allowed = std::string(name) == "exact" ? 0.0 : 1.0;
    const auto wq = testing::compare_outputs(plain, "q_out", with.q_out, without.q_out);
    const auto wk = testing::compare_outputs(plain, "k_out", current, without.k_out);
    INFO(wq.where << wk.where);
    CHECK(wq.ulps <= allowed);
    CHECK(wk.ulps <= allowed);
  }
}

TEST_CASE("half and interleaved layouts are the same map up to a feature permutation",
          "[golden][properties]") {
  Case half = make(10, 5, 3);
  half.rotary_dim = 8;
  Case inter = half;
  inter.layout = Layout::interleaved;
  // Feature perm[i] of the interleaved layout holds feature i of the half layout.
  std::vector<long> perm(10);
  for (long j = 0; j < 4; ++j) {
    perm[half.pair_a(j)] = inter.pair_a(j);
    perm[half.pair_b(j)] = inter.pair_b(j);
  }
  perm[8] = 8;
  perm[9] = 9;
  const Inputs in = generate_inputs(half, 17, DType::fp16);
  auto permute = [&](const Tensor& t) {
    Tensor out(t.shape);
    for (std::size_t r = 0; r < t.rows(); ++r)
      for (long i = 0; i < 10; ++i) out.row(r)[perm[i]] = t.row(r)[i];
    return out;
  };
  for (const auto& [name, path] : kPaths) {
    INFO(name);
    const Golden gh = path(half, in.q, in.k, {});
    const Golden gi = path(inter, permute(in.q), permute(in.k), {});
    CHECK(permute(gh.q_out).data == gi.q_out.data);
    CHECK(permute(gh.k_out).data == gi.k_out.data);
    CHECK(logit_diff(gh, gi) <= 1.0);  // the same products, summed in another order
  }
}

TEST_CASE("golden paths reject wrong input shapes, naming the tensor", "[golden][properties]") {
  const Case c = make(8, 4, 2);
  const Inputs in = generate_inputs(c, 1, DType::fp32);
  const Tensor wrong(Shape{1, 1, 4, 8});  // k needs M+N = 6 rows
  const Tensor wrong_q(Shape{1, 2, 4, 8});
  for (const auto& [name, path] : kPaths) {
    INFO(name);
    CHECK_THROWS_WITH(path(c, in.q, wrong, {}),
                      Catch::Contains("k_in") && Catch::Contains("[1, 1, 6, 8]") &&
                          Catch::Contains("[1, 1, 4, 8]"));
    CHECK_THROWS_WITH(path(c, wrong_q, in.k, {}),
                      Catch::Contains("q_in") && Catch::Contains("[1, 2, 4, 8]"));
    Case bad = c;
    bad.head_dim = 7;
    CHECK_THROWS_AS(path(bad, in.q, in.k, {}), InvalidParameter);
  }
}

TEST_CASE("logits_of is the fp64 product of the given tensors", "[golden][logits]") {
  // Large enough that golden_fast takes the plain route (work above 2^24).
  Case c = make(64, 520, 520);
  c.heads = 2;
  const Inputs in = generate_inputs(c, 4, DType::bf16);
  const Golden g = golden_fast(c, in.q, in.k, {true, 512});
  REQUIRE(g.logit_rows.size() == 512);
  CHECK(logits_of(g.q_out, g.k_out, g.logit_rows).data == g.logits.data);
  // Against a compensated (double-double) dot of the same fp64 tensors: within the
  // documented (D + 2) 2^-53 sum |q k|.
  const auto mags = testing::logit_magnitudes(g.q_out, g.k_out, g.logit_rows);
  double worst = 0.0;
  std::size_t e = 0;
  for (long h = 0; h < 2; ++h)
    for (long m : g.logit_rows)
      for (long n = 0; n < 1040; ++n, ++e) {
        long double s = 0.0L;  // 64-bit significand: far below the bound checked
        for (long i = 0; i < 64; ++i)
          s += static_cast<long double>(g.q_out.row(h * 520 + m)[i]) * g.k_out.row(h * 1040 + n)[i];
        worst = std::max(worst, std::fabs(g.logits.data[e] - double(s)) / ulp_fp64(mags[e]));
      }
  CHECK(worst <= 66.0);
  CHECK_THROWS_AS(logits_of(g.q_out, g.q_out, {520}), std::invalid_argument);
}

TEST_CASE("plain logits asked for take logits_of's route on a small case too", "[golden][logits]") {
  Case c = make(32, 40, 60);  // 1 x 1 x 40 x 100 x 32 multiply-adds: the double-double route by default
  const Inputs in = generate_inputs(c, 9, DType::fp32);
  const Golden dd = golden_fast(c, in.q, in.k);
  GoldenOptions options;
  options.double_double_logits = false;
  const Golden plain = golden_fast(c, in.q, in.k, options);
  REQUIRE(plain.logit_rows == dd.logit_rows);
  CHECK(plain.q_out.data == dd.q_out.data);
  CHECK(plain.logits.data == logits_of(plain.q_out, plain.k_out, plain.logit_rows).data);
  // Within the plain route's (D + 2) 2^-53 sum |q k| of the Dot2 values, and not them.
  const auto mags = testing::logit_magnitudes(dd.q_out, dd.k_out, dd.logit_rows);
  double worst = 0.0;
  std::size_t differ = 0;
  for (std::size_t e = 0; e < dd.logits.data.size(); ++e) {
    const double d = std::fabs(plain.logits.data[e] - dd.logits.data[e]);
    worst = std::max(worst, d / ulp_fp64(mags[e]));
    differ += d != 0.0;
  }
  CHECK(worst <= 34.0);
  CHECK(differ > 0);
}

TEST_CASE("logits_of agrees with a BLAS product and does not depend on which keys share the call",
          "[golden][logits]") {
  Case c = make(128, 300, 700);
  const Inputs in = generate_inputs(c, 11, DType::fp32);
  const Golden g = golden_fast(c, in.q, in.k, {false, 0});
  std::vector<long> rows;
  for (long m = 0; m < 300; m += 7) rows.push_back(m);
  const Tensor plain = logits_of(g.q_out, g.k_out, rows);
  // An independent product: xtensor-blas (dgemm), summing over D in its own order.
  const std::size_t d = 128, keys = 1000;
  std::vector<double> q;
  for (long m : rows) q.insert(q.end(), g.q_out.row(std::size_t(m)), g.q_out.row(std::size_t(m)) + d);
  const auto Q = xt::adapt(q, std::array{rows.size(), d});
  const auto K = xt::adapt(g.k_out.data, std::array{keys, d});
  const xt::xarray<double> L = xt::linalg::dot(Q, xt::transpose(K));
  const auto mags = testing::logit_magnitudes(g.q_out, g.k_out, rows);
  double worst = 0;
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (std::size_t n = 0; n < keys; ++n)
      worst = std::max(worst, std::fabs(plain.row(i)[n] - L(i, n)) / ulp_fp64(mags[i * keys + n]));
  CHECK(worst <= 2 * 130.0);  // each within (D + 2) 2^-53 sum |q k| of the exact value
  // Keys in blocks of 13 (not a multiple of the kernel's 8 lanes) give the same logits.
  for (std::size_t first = 0; first < keys; first += 13) {
    const std::size_t count = std::min<std::size_t>(13, keys - first);
    Tensor block(Shape{1, 1, count, d});
    std::copy_n(g.k_out.row(first), count * d, block.data.begin());
    const Tensor part = logits_of(g.q_out, block, rows);
    for (std::size_t i = 0; i < rows.size(); ++i)
      for (std::size_t n = 0; n < count; ++n) REQUIRE(part.row(i)[n] == plain.row(i)[first + n]);
  }
}

TEST_CASE("logits_of with visible keys gives the full product's logits it needs", "[golden][logits]") {
  Case c = make(64, 300, 100);
  c.heads = 2;
  const Inputs in = generate_inputs(c, 9, DType::fp32);
  const Golden g = golden_fast(c, in.q, in.k, {false, 0});
  std::vector<long> rows, visible;
  for (long m = 0; m < 300; m += 3) {
    rows.push_back(m);
    visible.push_back(100 + m + 1);  // causal: the memory and the rows up to its own
  }
  // Each logit is a sum over D in feature order whatever the shape of the product:
  // the causal logits are the full product's bit for bit.
  const Tensor full = logits_of(g.q_out, g.k_out, rows);
  const Tensor causal = logits_of(g.q_out, g.k_out, rows, &visible);
  REQUIRE(causal.shape == full.shape);
  std::size_t compared = 0, differ = 0;
  for (std::size_t r = 0; r < 2 * rows.size(); ++r) {
    const long need = visible[r % rows.size()];
    for (long n = 0; n < need; ++n, ++compared) differ += causal.row(r)[n] != full.row(r)[n] ? 1 : 0;
  }
  CHECK(differ == 0);
  CHECK(compared == 2 * (100 * 101 + 3 * 99 * 100 / 2));
  // The same through golden_fast's options, on its plain route.
  GoldenOptions options(true, 0);
  options.rows = rows;
  options.visible_keys = visible;
  const Golden causal_golden = golden_fast(c, in.q, in.k, options);
  const Golden full_golden = golden_fast(c, in.q, in.k, GoldenOptions(true, 0));
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (long n = 0; n < visible[i]; ++n)
      REQUIRE(causal_golden.logits.row(i)[n] == Approx(full_golden.logits.row(static_cast<std::size_t>(rows[i]))[n]).epsilon(1e-12).margin(1e-12));
  const std::vector<long> too_many{401};
  CHECK_THROWS_AS(logits_of(g.q_out, g.k_out, {0}, &too_many), std::invalid_argument);
  CHECK_THROWS_AS(logits_of(g.q_out, g.k_out, {0, 1}, &too_many), std::invalid_argument);
}

TEST_CASE("plain logits are each one fma chain over the features, whatever rows share the call",
          "[golden][logits]") {
  // 1 to 9 rows (every tail of the kernel's groups of 4), 21 keys (a partial block of 8).
  const long d = 24, keys = 21;
  std::vector<double> q(9 * d), k(keys * d);
  SplitMix64 rng(5);
  for (double& v : q) v = portable_normal(rng);
  for (double& v : k) v = portable_normal(rng);
  for (long rows = 1; rows <= 9; ++rows) {
    std::vector<double> out(static_cast<std::size_t>(rows * keys), -1.0);
    plain_logits_head(q.data(), rows, k.data(), keys, d, out.data(), keys);
    for (long r = 0; r < rows; ++r)
      for (long key = 0; key < keys; ++key) {
        double sum = 0;
        for (long i = 0; i < d; ++i) sum = std::fma(q[r * d + i], k[key * d + i], sum);
        INFO(rows << " rows: row " << r << ", key " << key);
        CHECK(out[static_cast<std::size_t>(r * keys + key)] == sum);
      }
  }
}
