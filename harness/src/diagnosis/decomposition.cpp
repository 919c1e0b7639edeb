// Phase / magnitude decomposition: for each rotated pair, out / golden as a complex
// ratio gives the angle and log-scale the candidate got wrong. Fitted against position,
// a constant angle error is a position shift (intercept / omega), a slope a wrong
// frequency, a constant log-scale error a shifted XPOS centre.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <utility>

#include "diagnosis/detail.hpp"

namespace xposcheck::diagnosis {
namespace {

constexpr double kTwoPi = 2.0 * std::numbers::pi;

double wrap(double angle) { return std::remainder(angle, kTwoPi); }

class LineAccumulator {
 public:
  void add(double x, double y) {
    n_ += 1;
    sx_ += x;
    sy_ += y;
    sxx_ += x * x;
    sxy_ += x * y;
    syy_ += y * y;
  }
  LineFit fit() const {
    LineFit f;
    if (n_ == 0) return f;
    const double vxx = sxx_ - sx_ * sx_ / n_, vxy = sxy_ - sx_ * sy_ / n_;
    const double vyy = syy_ - sy_ * sy_ / n_;
    f.slope = vxx > 0 ? vxy / vxx : 0.0;
    f.intercept = (sy_ - f.slope * sx_) / n_;
    const double sse = vxx > 0 ? vyy - vxy * vxy / vxx : vyy;
    f.residual = std::sqrt(std::max(0.0, sse) / n_);
    return f;
  }

 private:
  double n_ = 0, sx_ = 0, sy_ = 0, sxx_ = 0, sxy_ = 0, syy_ = 0;
};

// Per pair: the fits, and the previous (unwrapped) angle error so that an error that
// grows along position is followed past +-pi.
struct PairState {
  LineAccumulator angle, log_scale;
  double previous = 0;
  bool started = false;
};

// Pairs whose input is this small relative to the typical pair are ill-conditioned:
// the output's rounding dominates their angle.
double tiny_input_threshold(const Evidence& ev, const Tensor& in, const std::vector<SampledRow>& rows, bool key) {
  const Case& c = ev.c;
  double sum = 0;
  std::size_t count = 0;
  for (const SampledRow& s : rows) {
    const double* x = in.row(flat_row(ev, key, s));
    for (long i = 0; i < c.rotary(); ++i) sum += x[i] * x[i];
    count += static_cast<std::size_t>(c.pairs());
  }
  return count ? 1e-3 * std::sqrt(sum / static_cast<double>(count)) : 0.0;
}

struct TensorRefs {
  const char* name;
  const Tensor& in;
  const Tensor& out;
  const Tensor& golden;
  const std::vector<SampledRow>& rows;
  bool key;
  double rotation;
  bool reference_from_inputs;  // SPEC's rotation of each input pair, not the golden tensor
};

// SPEC's output pair (a, b) of input row x at position p: the golden tensor's, or
// made here from x where the case's pairing is not the golden's (another layout).
std::pair<double, double> reference_pair(const Evidence& ev, const TensorRefs& t, const double* x,
                                         const double* g, long p, long j, long a, long b) {
  if (!t.reference_from_inputs) return {g[a], g[b]};
  const double phi = ev.tables.angle(p, j);
  const double scale = ev.c.xpos ? std::exp((t.key ? -1 : 1) * ev.tables.log_scale(p, j)) : 1.0;
  return {(x[a] * std::cos(phi) - x[b] * std::sin(phi)) * scale,
          (x[b] * std::cos(phi) + x[a] * std::sin(phi)) * scale};
}

TensorDecomposition decompose_tensor(const Evidence& ev, const TensorRefs& t) {
  const Case& c = ev.c;
  const long pairs = c.pairs();
  const double max_finite = traits(ev.dtype).max_finite;
  // A candidate pair below the dtype's smallest normal holds fewer significant bits than
  // its angle and scale are read to: up to pi of angle for a pair of a few subnormal ulps.
  const double min_normal_sq = traits(ev.dtype).min_normal * traits(ev.dtype).min_normal;
  const double unit = std::ldexp(1.0, -traits(ev.dtype).precision);
  const double tiny = tiny_input_threshold(ev, t.in, t.rows, t.key);
  std::vector<PairState> state(static_cast<std::size_t>(pairs));
  TensorDecomposition d;
  d.tensor = t.name;
  LineAccumulator passthrough;
  std::vector<bool> changed(static_cast<std::size_t>(c.head_dim), false);
  double err_sq = 0, phi_sq = 0;
  for (const SampledRow& s : t.rows) {
    const std::size_t flat = flat_row(ev, t.key, s);
    const double *x = t.in.row(flat), *y = t.out.row(flat), *g = t.golden.row(flat);
    const long p = t.key ? c.key_position(s.row) : c.query_position(s.row);
    for (long j = 0; j < pairs; ++j) {
      const long a = c.pair_a(j), b = c.pair_b(j);
      const auto [ga, gb] = reference_pair(ev, t, x, g, p, j, a, b);
      const double gm2 = ga * ga + gb * gb, ym2 = y[a] * y[a] + y[b] * y[b];
      const bool usable = std::hypot(x[a], x[b]) >= tiny && std::fabs(ga) <= max_finite &&
                          std::fabs(gb) <= max_finite && std::isfinite(ym2) && ym2 >= min_normal_sq && gm2 > 0;
      if (!usable) {
        ++d.pairs_skipped;
        continue;
      }
      ++d.pairs_used;
      const double phi = ev.tables.angle(p, j);
      // Against -phi the error is (delta + 2 phi), measured in the reversed direction.
      const double against_spec = std::atan2(y[b] * ga - y[a] * gb, y[a] * ga + y[b] * gb);
      const double delta = t.rotation == 1 ? against_spec : wrap(-(against_spec + 2 * phi));
      const double log_ratio = 0.5 * std::log(ym2 / gm2);
      PairState& st = state[static_cast<std::size_t>(j)];
      st.previous = st.started ? st.previous + wrap(delta - st.previous) : delta;
      st.started = true;
      st.angle.add(static_cast<double>(p), st.previous);
      st.log_scale.add(static_cast<double>(p), log_ratio);
      if (std::fabs(delta) > d.max_angle_error) {
        d.max_angle_error = std::fabs(delta);
        d.worst_angle_position = p;
        d.worst_angle_pair = j;
      }
      d.max_log_scale_error = std::max(d.max_log_scale_error, std::fabs(log_ratio));
      if (std::fabs(phi) >= 8.0) {
        err_sq += delta * delta;
        phi_sq += phi * unit * phi * unit;
      }
    }
    for (long i = 0; i < c.head_dim; ++i) {
      if (y[i] != x[i]) changed[static_cast<std::size_t>(i)] = true;
    }
    for (long i = c.rotary(); i < c.head_dim; ++i) {
      if (x[i] != 0 && std::isfinite(y[i])) {
        d.passthrough_max_rel_change =
            std::max(d.passthrough_max_rel_change, std::fabs(y[i] - x[i]) / std::fabs(x[i]));
        if (y[i] != 0) passthrough.add(static_cast<double>(p), std::log(std::fabs(y[i] / x[i])));
      }
    }
  }
  d.passthrough_log_scale = passthrough.fit();
  for (long i = 0; i < c.head_dim; ++i) {
    if (!changed[static_cast<std::size_t>(i)]) continue;
    if (d.first_changed < 0) d.first_changed = i;
    d.last_changed = i;
  }
  d.angle_error_per_phi_eps = phi_sq > 0 ? std::sqrt(err_sq / phi_sq) : 0.0;
  const std::vector<double> omega = pair_frequencies(c, spec_convention(c)), log_zeta = pair_log_zeta(c);
  for (long j = 0; j < pairs; ++j) {
    FrequencyFit f;
    f.pair = j;
    f.omega = omega[static_cast<std::size_t>(j)];
    f.lambda = c.xpos ? log_zeta[static_cast<std::size_t>(j)] : 0.0;
    f.angle = state[static_cast<std::size_t>(j)].angle.fit();
    f.log_scale = state[static_cast<std::size_t>(j)].log_scale.fit();
    d.fits.push_back(f);
  }
  return d;
}

}  // namespace

std::vector<TensorDecomposition> decompose(const Evidence& ev, double rotation, bool reference_from_inputs) {
  if (!ev.output) return {};
  return {decompose_tensor(ev, {"q_out", ev.q_in, ev.output->q_out, ev.golden.q_out, ev.q_rows, false, rotation,
                                reference_from_inputs}),
          decompose_tensor(ev, {"k_out", ev.k_in, ev.output->k_out, ev.golden.k_out, ev.k_rows, true, rotation,
                                reference_from_inputs})};
}

void keep_representative_fits(TensorDecomposition& part, std::size_t count) {
  const std::size_t all = part.fits.size();
  if (all <= count || count < 2) return;
  std::vector<FrequencyFit> kept;
  for (std::size_t k = 0; k < count; ++k) {
    const std::size_t j = (k * (all - 1) + (count - 1) / 2) / (count - 1);
    if (kept.empty() || kept.back().pair != part.fits[j].pair) kept.push_back(part.fits[j]);
  }
  part.fits = std::move(kept);
}

}  // namespace xposcheck::diagnosis
