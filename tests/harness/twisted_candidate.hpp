#pragma once
// SPEC section 1 in fp64 with one rounding to the dtype, and conventions or bugs
// changed on request: candidates whose differences no built-in plants, written
// directly from the math rather than from the hypotheses that should name them.
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "xposcheck/harness/candidate.hpp"

namespace xposcheck::testing {

struct Twist {
  double query_shift = 0, key_shift = 0;            // added to positions
  std::optional<double> query_centre = {}, key_centre = {};
  std::optional<double> base = {};                  // theta' actually used
  std::optional<DType> frequencies_in = {};         // inverse frequencies rounded to this dtype
  double scale_position_factor = 1;                 // XPOS exponent (factor * p - centre) / B
  std::optional<long> passthrough_pair = {};        // pass-through features scaled like this pair
  bool rotate_last_features = false;                // partial rotary on features D-R..D-1
  double output_factor = 1;                         // every output multiplied by this
  std::optional<DType> positions_in = {};           // shifted positions rounded to this dtype
  bool positions_from_first_row = false;            // ...as round(round(row index) + first position)
  bool angles_in_fp32 = false;                      // p * omega_j formed in fp32, as most code does
  bool other_layout = false;                        // pairs of the layout the case does not ask for
  bool reversed = false;                            // rotated by -phi (the sign of sin flipped)
  // Per-feature tables built for the other pairing (cat(t, t) under neighbouring pairs,
  // repeat_interleave(t, 2) under half pairs): feature e takes that layout's pair's entry.
  bool angle_tables_other_layout = false, scale_tables_other_layout = false;
  bool keys_unscaled = false;                       // the XPOS scale applied to the queries only
  bool keys_not_inverted = false;                   // keys scaled by sigma like the queries
  double zeta_step = 2;                             // zeta_j = (step j + g R) / ((1 + g) R)
  double zeta_constant = 0.4;                       // g
  double memory_rotations = 1;                      // memory keys rotated 0 times (left as input) or twice
  bool sin_cos_swapped = false;                     // x sin phi + r(x) cos phi
  bool xpos_always = false;                         // the XPOS scale even where the case has none
};

// The pair whose table entry feature e (of the rotary part) takes.
inline long table_pair(const Case& c, long pair, long e, bool other_tables) {
  if (!other_tables) return pair;
  return c.layout == Layout::half ? e / 2 : e % c.pairs();
}

inline double twisted_base(const Case& c, const Twist& tw) {
  if (tw.base) return *tw.base;
  const double r = static_cast<double>(c.rotary());
  return c.base_rescale == 1 ? c.base : c.base * std::pow(c.base_rescale, r / (r - 2));
}

inline Tensor twisted_rotate(const Case& c, DType t, const Tensor& in, bool query, const Twist& tw) {
  Tensor out = in;
  Case paired = c;
  if (tw.other_layout) paired.layout = other_layout(c.layout);
  const long rows = static_cast<long>(in.shape[2]);
  const double r = static_cast<double>(c.rotary()), base = twisted_base(c, tw);
  const double frame_centre = (query ? tw.query_centre : tw.key_centre).value_or(c.centre());
  const long offset = tw.rotate_last_features ? c.head_dim - c.rotary() : 0;
  for (long l = 0; l < c.batch * c.heads; ++l) {
    for (long row = 0; row < rows; ++row) {
      double p = static_cast<double>(query ? c.query_position(row) : c.key_position(row)) +
                 (query ? tw.query_shift : tw.key_shift);
      if (tw.positions_in && tw.positions_from_first_row) {
        const double first = static_cast<double>(query ? c.query_position(0) : c.key_position(0)) +
                             (query ? tw.query_shift : tw.key_shift);
        p = round_to(*tw.positions_in, round_to(*tw.positions_in, p - first) + first);
      } else if (tw.positions_in) {
        p = round_to(*tw.positions_in, p);
      }
      // A memory key rotated k times: angle k phi and scale sigma^k, its centre with it.
      const double times = !query && row < c.mem_len ? tw.memory_rotations : 1.0;
      p *= times;
      const double centre = frame_centre * times;
      const double* x = in.row(static_cast<std::size_t>(l * rows + row));
      double* y = out.row(static_cast<std::size_t>(l * rows + row));
      double pass_scale = 1;
      std::vector<double> phis(static_cast<std::size_t>(c.pairs())), scales(phis.size());
      for (long j = 0; j < c.pairs(); ++j) {
        const double jj = static_cast<double>(j);
        double inv_freq = std::pow(base, -2 * jj / r);
        if (tw.frequencies_in) inv_freq = round_to(*tw.frequencies_in, inv_freq);
        double phi = p * inv_freq / c.interpolation;
        if (tw.angles_in_fp32)
          phi = static_cast<float>(static_cast<float>(p) * static_cast<float>(inv_freq / c.interpolation));
        if (tw.reversed) phi = -phi;
        const double ls = (query ? 1 : -1) * std::log((tw.zeta_step * jj + tw.zeta_constant * r) /
                                                              ((1 + tw.zeta_constant) * r)) *
                          (tw.scale_position_factor * p - centre) / c.scale_base;
        const double signed_ls = tw.keys_not_inverted && !query ? -ls : ls;
        const double s = (c.xpos || tw.xpos_always) && !(tw.keys_unscaled && !query) ? std::exp(signed_ls) : 1.0;
        if (tw.passthrough_pair && *tw.passthrough_pair == j) pass_scale = s;
        phis[static_cast<std::size_t>(j)] = phi;
        scales[static_cast<std::size_t>(j)] = s;
      }
      for (long j = 0; j < c.pairs(); ++j) {
        const long ea = paired.pair_a(j), eb = paired.pair_b(j), a = offset + ea, b = offset + eb;
        const auto angle = [&](long e) { return phis[std::size_t(table_pair(paired, j, e, tw.angle_tables_other_layout))]; };
        const auto scale = [&](long e) { return scales[std::size_t(table_pair(paired, j, e, tw.scale_tables_other_layout))]; };
        const auto cos = [&](double a) { return tw.sin_cos_swapped ? std::sin(a) : std::cos(a); };
        const auto sin = [&](double a) { return tw.sin_cos_swapped ? std::cos(a) : std::sin(a); };
        y[a] = round_to(t, (x[a] * cos(angle(ea)) - x[b] * sin(angle(ea))) * scale(ea) * tw.output_factor);
        y[b] = round_to(t, (x[b] * cos(angle(eb)) + x[a] * sin(angle(eb))) * scale(eb) * tw.output_factor);
      }
      for (long i = 0; i < c.head_dim; ++i) {
        if (i >= offset && i < offset + c.rotary()) continue;
        y[i] = round_to(t, x[i] * pass_scale * tw.output_factor);
      }
    }
  }
  return out;
}

class TwistedCandidate : public Candidate {
 public:
  explicit TwistedCandidate(Twist t) : twist_(t) {}
  std::string name() const override { return "twisted"; }
  std::string description() const override { return "SPEC with a twist"; }
  CandidateOutput run(const Case& c, DType t, const Tensor& q, const Tensor& k) override {
    const std::string n(dtype_name(t));
    return {twisted_rotate(c, t, q, true, twist_), twisted_rotate(c, t, k, false, twist_), n, n};
  }

 private:
  Twist twist_;
};

}  // namespace xposcheck::testing
