// The multiprecision translation unit: golden_exact, golden_gradients_exact and the
// seeds of RotaryTables.
// All instantiate the Boost.Multiprecision templates of exact.hpp, which are slow to
// compile, so they live together here and nowhere else.
#include <boost/multiprecision/cpp_bin_float.hpp>

#include <cmath>
#include <compare>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "exact.hpp"
#include "packed_golden.hpp"
#include "seeds.hpp"

namespace xposcheck {
namespace {

namespace mp = boost::multiprecision;
// 128-bit binary significand (15 bits beyond binary128); expression templates off,
// which is faster for this scalar code.
using Real = mp::number<mp::cpp_bin_float<128, mp::digit_base_2>, mp::et_off>;

// Real as hi + lo straight from its 128-bit significand m and exponent e (value
// m 2^(e-127)): the generic conversion (two rounding conversions and a subtraction)
// dominated the table build. Zero, non-finite and extreme values take the generic path.
DD split(const Real& x) {
  const auto& b = x.backend();
  const auto e = b.exponent();
  if (eval_fpclassify(b) != FP_NORMAL || e < -900 || e > 900 || b.bits().size() != 2)
    return exact::to_dd(x);
  const auto* limbs = b.bits().limbs();
  const unsigned __int128 m = (static_cast<unsigned __int128>(limbs[1]) << 64) | limbs[0];
  const unsigned __int128 half = static_cast<unsigned __int128>(1) << 74;
  auto top = static_cast<std::uint64_t>(m >> 75);  // 53 bits
  const unsigned __int128 rest = m & (2 * half - 1);
  const bool up = rest > half || (rest == half && (top & 1));
  top += up;
  const __int128 rem = static_cast<__int128>(rest) - (up ? static_cast<__int128>(2 * half) : 0);
  const double sign = b.sign() ? -1.0 : 1.0;
  return {sign * std::ldexp(static_cast<double>(top), static_cast<int>(e) - 52),
          sign * std::ldexp(static_cast<double>(rem), static_cast<int>(e) - 127)};
}

// Powers of a unit complex number w and a positive real s: z_k = z_0 w^k, s_k = s_0 s^k,
// by repeated multiplication. Each step adds about 2^-127 relative error.
struct Walk {
  Real cos, sin, scale, inv_scale;
  void step(const Walk& w) {
    const Real c = cos * w.cos - sin * w.sin;
    sin = sin * w.cos + cos * w.sin;
    cos = c;
    scale *= w.scale;
    inv_scale *= w.inv_scale;
  }
  SeedRotation rounded() const { return {split(cos), split(sin), split(scale), split(inv_scale)}; }
};

// The rotation by angle k omega and the scale exp(e log_zeta).
Walk walk_at(const Real& omega, const Real& log_zeta, long k, long e) {
  const Real phi = Real(k) * omega;
  const Real le = Real(e) * log_zeta;
  return {cos(phi), sin(phi), exp(le), exp(Real(-le))};
}

// Boost.Multiprecision keeps the constants its functions need (ln 2, pi, ...) in
// statics that it fills on first use without a guard: two threads making their first
// seeds at once could read a half-written ln 2 and build a table with one wrong
// column (the first pair of the second thread's share; helgrind shows the race). Every
// entry point below fills them once, under a mutex (which race checkers such as
// helgrind follow, unlike pthread_once), before any other use.
void fill_constants_once() {
  static std::mutex mutex;
  static bool filled = false;
  std::lock_guard lock(mutex);
  if (filled) return;
  Real sum = 0;
  for (const double x : {0.75, 3.5, 1000.0, -60.0}) {
    const Real r(x);
    sum += sin(r) + cos(r) + exp(r) + log(abs(r)) + pow(abs(r), Real(1.25)) + sqrt(abs(r));
  }
  if (!isfinite(sum)) throw std::logic_error("multiprecision constants are not finite");
  filled = true;
}

}  // namespace

Golden golden_exact(const Case& c, const Tensor& q_in, const Tensor& k_in,
                    const GoldenOptions& options) {
  fill_constants_once();
  if (c.packed) {
    validate(c);
    return packed_golden(c, q_in, k_in, [](const Case& one, const Tensor& q, const Tensor& k) {
      return golden_exact(one, q, k, GoldenOptions(false, 0));
    });
  }
  return exact::golden<Real>(c, q_in, k_in, options);
}

GoldenGradients golden_gradients_exact(const Case& c, const Tensor& g_q, const Tensor& g_k) {
  fill_constants_once();
  if (c.packed) {
    validate(c);
    return packed_gradients(c, g_q, g_k, golden_gradients_exact);
  }
  return exact::gradients<Real>(c, g_q, g_k);
}

namespace {

// What pair j's seeds share between tables with the same frequencies and s1: omega_j,
// ln zeta_j, the coarse step's rotation and the fine walks. Only the coarse walk's start
// depends on a table's first position and centre.
struct SharedSeeds {
  Real omega, log_zeta;
  Walk coarse_step;
  std::vector<SeedRotation> mid, unit;
};

// Everything omega_j and ln zeta_j are computed from, and s1.
struct SharedKey {
  long rotary;
  double base, base_rescale, interpolation;
  bool xpos;
  double scale_base;
  long j, s1;
  auto operator<=>(const SharedKey&) const = default;
};

// A sweep's tables share a few frequency sets; the bound only stops a long-running
// process of many different cases from growing. An entry holds 2 s1 seeds of 64 bytes
// (s1 = 32 up to 32768 positions, 128 up to 2^21).
constexpr std::size_t kMaxSharedEntries = 4096;

// z, z w, z w^2, ..., count values, each rounded to double-double.
std::vector<SeedRotation> walk(Walk z, const Walk& w, long count) {
  std::vector<SeedRotation> out;
  out.reserve(static_cast<std::size_t>(count));
  for (long k = 0; k < count; ++k) {
    out.push_back(z.rounded());
    if (k + 1 < count) z.step(w);
  }
  return out;
}

std::shared_ptr<const SharedSeeds> make_shared_seeds(const Case& c, long j, long s1) {
  auto s = std::make_shared<SharedSeeds>();
  s->omega = exact::omega(c, exact::log_theta_prime<Real>(c), j);
  s->log_zeta = exact::log_zeta<Real>(c, j);
  s->coarse_step = walk_at(s->omega, s->log_zeta, s1 * s1, s1 * s1);
  // Both fine walks start at offset 0, uncentred.
  const Walk origin = walk_at(s->omega, s->log_zeta, 0, 0);
  s->mid = walk(origin, walk_at(s->omega, s->log_zeta, s1, s1), s1);
  s->unit = walk(origin, walk_at(s->omega, s->log_zeta, 1, 1), s1);
  return s;
}

// Made outside the lock; two threads asking for the same entry at once both make it,
// with the same values, and the first one stored is kept.
std::shared_ptr<const SharedSeeds> shared_seeds(const Case& c, long j, long s1) {
  static std::mutex mutex;
  static std::map<SharedKey, std::shared_ptr<const SharedSeeds>> entries;
  const SharedKey key{c.rotary(), c.base, c.base_rescale, c.interpolation, c.xpos,
                      c.xpos ? c.scale_base : 0.0, j, s1};
  {
    std::lock_guard lock(mutex);
    if (const auto it = entries.find(key); it != entries.end()) return it->second;
  }
  auto made = make_shared_seeds(c, j, s1);
  std::lock_guard lock(mutex);
  if (entries.size() >= kMaxSharedEntries) entries.clear();
  return entries.emplace(key, std::move(made)).first->second;
}

}  // namespace

PairSeeds pair_seeds(const Case& c, long j, const SeedLayout& layout) {
  fill_constants_once();
  const auto shared = shared_seeds(c, j, layout.s1);
  PairSeeds seeds;
  seeds.frequency = {exact::to_dd(shared->omega), exact::to_dd(shared->log_zeta)};
  seeds.coarse = walk(walk_at(shared->omega, shared->log_zeta, layout.first, layout.first - c.centre()),
                      shared->coarse_step, layout.coarse_count);
  seeds.mid = shared->mid;
  seeds.unit = shared->unit;
  return seeds;
}

}  // namespace xposcheck
