#include "compare_logits.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace xposcheck::detail {
namespace {

// The first logit of a clean row whose ratio equals the row's maximum.
template <class Element>
ElementRef worst_logit(const LogitRow& row, const InverseUlp& inv_ulp, double max_ratio,
                       Element element) {
  for (long k = 0; k < row.keys; ++k) {
    const double u = std::fabs(row.got[k] - row.golden[k]) * inv_ulp(row.query_norm * row.key_norms[k]);
    if (u * (1.0 / row.allowed(k)) != max_ratio) continue;
    ElementRef at = element(k);
    at.error_ulps = u;
    return at;
  }
  return element(0);
}

// The least-squares fit candidate - golden = bias * golden over the compared logits,
// each divided by |q| |k| so that every row counts alike whatever its magnitude.
class BiasFit {
 public:
  // floor_sq: the square of the smallest normalised logit whose rounding noise is
  // counted at its own size (below it, at that size: 1/D, a random pair of vectors).
  void add(double got, double want, double magnitude, double floor_sq) {
    const double t = want / magnitude, e = (got - want) / magnitude, tt = t * t;
    et_ += e * t;
    tt_ += tt;
    noise_ += std::max(tt, floor_sq) * tt;
    eett_ += e * e * tt;
    ettt_ += e * t * tt;
    tttt_ += tt * tt;
  }
  double bias() const { return tt_ > 0 ? et_ / tt_ : 0.0; }
  // Heteroscedasticity-robust: the residuals e - bias t themselves say how noisy the
  // logits are.
  double standard_error() const {
    const double b = bias(), r2 = eett_ - 2 * b * ettt_ + b * b * tttt_;
    return tt_ > 0 ? std::sqrt(std::max(r2, 0.0)) / tt_ : 0.0;
  }
  // The same with a rounding noise of `unit` relative to each logit's size instead of
  // the residuals: what few logits cannot measure themselves.
  double model_error(double unit) const { return tt_ > 0 ? unit * std::sqrt(noise_) / tt_ : 0.0; }

 private:
  double et_ = 0, tt_ = 0, eett_ = 0, ettt_ = 0, tttt_ = 0, noise_ = 0;
};

// Rounding leaves no systematic logit error, but a correct implementation's rows and
// keys each carry a few unit roundoffs of common error (its XPOS scale or table of
// that position, rounded once): averaged over the rows and the keys compared, they
// shrink with the square root of their numbers. kBiasSigmas standard errors cover the
// noise of the fit itself, measured from its residuals and modelled as kLogitNoise unit
// roundoffs of each logit, whichever is larger. An angle error delta leaves no bias to
// first order (it rotates, orthogonally to the logit) but shrinks a pair's share by
// 1 - cos(delta) ~ delta^2 / 2: angles off by one fp32 unit roundoff at the farthest
// position shrink the logits by up to mean_j (2^-24 |phi_j|)^2, which matters only
// at hundreds of thousands of positions. Measurements: docs/tolerances.md.
constexpr double kClusterBias = 2.0;
constexpr double kBiasSigmas = 6.0;
constexpr double kLogitNoise = 2.0;

// Logits do not change when q and k positions shift alike, and released code counts
// them from its own origin (keys at 0..M+N-1, counted from the first cached key, or at
// -M..N-1; docs/diagnosis.md, "origin"): the same logits then carry the rounding of
// angles at those positions. So a logit's allowance is the largest over SPEC's frame
// and both of those, lest a convention the diagnosis accepts fail on its logits. The
// shifts that take the case's positions there (none for explicit positions).
std::vector<long> frame_shifts(const Case& c) {
  if (c.positions || c.packed) return {0};
  const long to_cache = -c.first_key_position();
  std::vector<long> shifts{0};
  for (long s : {to_cache, to_cache - c.mem_len})
    if (std::find(shifts.begin(), shifts.end(), s) == shifts.end()) shifts.push_back(s);
  return shifts;
}

double row_allowance_in_frames(const Allowance& a, long p, const std::vector<long>& shifts) {
  double best = 0;
  for (long s : shifts) best = std::max(best, a.row(p, s));
  return best;
}

double angle_shrinkage(const Case& c, const std::vector<double>& omega) {
  if (omega.empty()) return 0.0;
  long reach = 0;
  for (long s : frame_shifts(c)) reach = std::max({reach, std::labs(c.lowest_position() + s), std::labs(c.highest_position() + s)});
  const double farthest = static_cast<double>(reach);
  double sum = 0;
  for (double w : omega) {
    const double delta = std::ldexp(farthest * w, -24);
    sum += delta * delta;
  }
  return sum / static_cast<double>(omega.size());
}

double allowed_bias(const Case& c, DType dtype, const Tolerance& tol, const BiasFit& fit, double rows, double keys,
                    const std::vector<double>& omega) {
  const double reach = static_cast<double>(std::max(std::labs(c.lowest_position() - c.centre()),
                                                    std::labs(c.highest_position() - c.centre())));
  const double power = c.xpos ? reach / c.scale_base : 0.0;
  const double units = tol.logits_bias + kClusterBias * (1 / std::sqrt(rows) + 1 / std::sqrt(keys)) +
                       tol.unit_ratio * (tol.base_ulps + tol.scale_factor * power);
  const double u = std::ldexp(1.0, -traits(dtype).precision);
  return u * units + angle_shrinkage(c, omega) +
         kBiasSigmas * std::max(fit.standard_error(), fit.model_error(kLogitNoise * u));
}

double norm_of(const double* row, long d) {
  double s = 0;
  for (long i = 0; i < d; ++i) s += row[i] * row[i];
  return std::sqrt(s);
}

}  // namespace

// Logits of the candidate's own q_out and k_out, so that another (self-consistent)
// centre convention is judged by what attention sees. The error unit is the dtype
// ulp at |q_m| |k_n|, which bounds sum_i |q_i k_i|.
struct LogitComparer::State {
  State(const Case& c, DType dtype, std::vector<long> rows, std::vector<double> norms, const Allowance& q_allow,
        const Allowance& k_allow, const Tolerance& tol, double fixed, const CompareOptions& options)
      : c(c),
        dtype(dtype),
        tol(tol),
        k_allow(k_allow),
        fixed(fixed),
        rows(std::move(rows)),
        query_norms(std::move(norms)),
        acc("logits", c.positions ? c.positions->lowest_query : c.query_position(0),
            c.positions ? c.positions->highest_query : c.query_position(c.seq_len - 1), options.curve_bins),
        inv_ulp(dtype),
        dirty(static_cast<std::size_t>(c.batch * c.heads) * this->rows.size(), 0) {
    fewest_keys = c.key_rows();  // the bias allowance's key count: the row that saw fewest
    shifts = frame_shifts(c);
    for (long m : this->rows) {
      visible.push_back(options.visible_keys ? options.visible_keys(m) : c.key_rows());
      fewest_keys = std::min(fewest_keys, visible.back());
      row_allowance.push_back(row_allowance_in_frames(q_allow, c.query_position(m), shifts));
    }
  }
  const Case& c;
  DType dtype;
  const Tolerance& tol;
  const Allowance& k_allow;
  double fixed;
  std::vector<long> rows, visible;
  std::vector<double> query_norms, row_allowance;
  std::vector<long> shifts;  // frame_shifts(c)
  TensorAccumulator acc;
  InverseUlp inv_ulp;
  BiasFit bias;
  std::vector<unsigned char> dirty;  // per (bh, row): some logit was not finite
  long fewest_keys = 0;
};

LogitComparer::LogitComparer(const Case& c, DType dtype, std::vector<long> rows, std::vector<double> query_norms,
                             const Allowance& q_allow, const Allowance& k_allow, const Tolerance& tol,
                             double fixed, const CompareOptions& options)
    : s_(std::make_unique<State>(c, dtype, std::move(rows), std::move(query_norms), q_allow, k_allow, tol, fixed,
                                 options)) {}

LogitComparer::~LogitComparer() = default;

void LogitComparer::add_keys(long first, long count, const double* golden, const double* got,
                             const double* golden_keys) {
  State& s = *s_;
  const Case& c = s.c;
  const long bh = c.batch * c.heads, d = c.head_dim;
  const auto sampled = static_cast<long>(s.rows.size());
  std::vector<double> kn(static_cast<std::size_t>(bh * count)), k_row(static_cast<std::size_t>(count));
  for (std::size_t r = 0; r < kn.size(); ++r) kn[r] = norm_of(golden_keys + r * static_cast<std::size_t>(d), d);
  for (long k = 0; k < count; ++k)
    k_row[static_cast<std::size_t>(k)] = row_allowance_in_frames(s.k_allow, c.key_position(first + k), s.shifts);
  RangeTracker unused;
  for (long l = 0; l < bh; ++l) {
    for (long i = 0; i < sampled; ++i) {
      const long m = s.rows[static_cast<std::size_t>(i)];
      const long visible = std::clamp(s.visible[static_cast<std::size_t>(i)] - first, 0L, count);
      if (visible == 0) continue;
      const std::size_t at = static_cast<std::size_t>((l * sampled + i) * count);
      const LogitRow row{golden + at,
                         got + at,
                         visible,
                         s.query_norms[static_cast<std::size_t>(l * sampled + i)],
                         &kn[static_cast<std::size_t>(l * count)],
                         s.row_allowance[static_cast<std::size_t>(i)],
                         k_row.data(),
                         s.tol.logits_factor,
                         s.fixed};
      auto element = [&](long k) {
        return ElementRef{l / c.heads, l % c.heads, m, first + k, c.query_position(m), -1,
                          row.got[k], row.golden[k], 0, row.allowed(k)};
      };
      bool clean = false;
      const RowErrors e = logit_row_errors(row, s.inv_ulp, clean);
      if (clean) {
        s.acc.add_row(c.query_position(m), e, [&] { return worst_logit(row, s.inv_ulp, e.max_ratio, element); });
        for (long k = 0; k < visible; ++k) {
          const double magnitude = row.query_norm * row.key_norms[k];
          if (magnitude > 0) s.bias.add(row.got[k], row.golden[k], magnitude, 1.0 / static_cast<double>(d));
        }
        continue;
      }
      s.dirty[static_cast<std::size_t>(l * sampled + i)] = 1;
      for (long k = 0; k < visible; ++k)
        compare_element(s.acc, unused, s.inv_ulp, INFINITY, element(k), row.query_norm * row.key_norms[k], 0,
                        "logits");
    }
  }
}

TensorStats LogitComparer::finish() {
  State& s = *s_;
  TensorStats stats = s.acc.finish();
  const auto clean_rows = static_cast<double>(std::count(s.dirty.begin(), s.dirty.end(), 0));
  if (clean_rows > 0) {
    stats.bias = s.bias.bias();
    stats.bias_allowed = allowed_bias(s.c, s.dtype, s.tol, s.bias, clean_rows,
                                      static_cast<double>(s.c.batch * s.c.heads * s.fewest_keys), s.k_allow.omega);
  }
  return stats;
}

}  // namespace xposcheck::detail
