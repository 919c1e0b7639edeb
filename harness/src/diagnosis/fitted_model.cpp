// The estimate-driven hypothesis: the candidate as a rotary XPOS map whose parameters
// are read from the decomposition (position shifts, XPOS centres and scale factors
// per tensor, one of a few frequency sets), then tested exactly like every other
// hypothesis. When it fits, each parameter that differs from SPEC is named: shared
// shifts and centres as conventions (origin, centre), the rest as bugs, and any mix
// of them as a combination (docs/diagnosis.md).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "diagnosis/hypotheses.hpp"

namespace xposcheck::diagnosis {
namespace {

struct FrequencySet {
  std::string name, explanation;  // empty for SPEC's own
  std::vector<double> omega;
  double rotation = 1;            // -1: the angles applied the other way (phi -> -phi)
  std::vector<double> lambda = {};  // when set: the XPOS ln(zeta_j) / B the code used instead of SPEC's
};

// "R/(R+2)" for an exponent that is one, else the number.
std::string exponent_text(long r, double e) {
  for (long k = -4; k <= 4; k += 2) {
    if (r + k > 0 && std::fabs(e - double(r) / double(r + k)) < 1e-12)
      return k == 0 ? "1" : fmt::format("R/(R{:+})", k);
  }
  return fmt::format("{:.6g}", e);
}

// x > 0 rounded to `digits` significant decimal digits: how an estimate read off the
// fits is turned into the constant code would have written.
double significant(double x, int digits) {
  const double unit = std::pow(10.0, std::floor(std::log10(x)) - digits + 1);
  return std::round(x / unit) * unit;
}

// Bases code is configured with (a hard-coded 10000 where the model asks for another,
// or the reverse), tried beside the decomposition's own estimate rounded.
constexpr double kKnownBases[] = {1e4, 5e4, 1e5, 5e5, 1e6, 5e6, 1e7};

// The bases worth trying for frequencies that follow another base: the estimate
// rounded to 1, 2 and 3 significant digits, and every known base within a factor of two
// of it (a 16-bit dtype reads the estimate off by tens of percent), apart from SPEC's.
std::vector<double> other_bases(const Estimates& e, double spec_base) {
  std::vector<double> out;
  if (!e.base || !(*e.base > 1) || !std::isfinite(*e.base)) return out;
  const auto add = [&](double b) {
    if (std::fabs(std::log(b / spec_base)) < 1e-9) return;
    if (std::none_of(out.begin(), out.end(), [&](double x) { return x == b; })) out.push_back(b);
  };
  for (int digits = 1; digits <= 3; ++digits) add(significant(*e.base, digits));
  for (double b : kKnownBases)
    if (b > *e.base / 2 && b < *e.base * 2) add(b);
  return out;
}

std::vector<FrequencySet> frequency_sets(const Case& c, const Convention& spec, const Estimates& estimates) {
  std::vector<FrequencySet> sets{{"", "", pair_frequencies(c, spec)}};
  const long r = c.rotary();
  const auto with_base = [&](double base) {
    Convention v = spec;
    v.base = base;
    return pair_frequencies(c, v);
  };
  if (c.base_rescale != 1.0) {
    const double spec_base = rescaled_base(c);
    struct Exponent {
      double value;
      std::string text, dims;
    };
    std::vector<Exponent> exponents;
    for (double e : {double(r) / double(r + 2), double(r) / double(r + 4), double(r) / double(r - 4),
                     double(r - 2) / double(r), double(r + 2) / double(r)})
      exponents.push_back({e, exponent_text(r, e), fmt::format("R = {}", r)});
    // A partial rotary's exponent taken over the head dim, as the frequencies sometimes are.
    const double d = static_cast<double>(c.head_dim);
    if (r < c.head_dim) exponents.push_back({d / (d - 2), "D/(D-2)", fmt::format("R = {}, D = {}", r, c.head_dim)});
    for (const Exponent& e : exponents) {
      if (!(e.value > 0) || !std::isfinite(e.value)) continue;
      const double base = c.base * std::pow(c.base_rescale, e.value);
      sets.push_back({"ntk-exponent",
                      fmt::format("frequencies match base theta * f^({}) = {:.6g} instead of theta * "
                                  "f^(R/(R-2)) = {:.6g}: NTK exponent {}, {}",
                                  e.text, base, spec_base, e.text, e.dims),
                      with_base(base)});
    }
  }
  if (r < c.head_dim) {
    Convention v = spec;
    v.base = std::pow(spec.base, double(r) / double(c.head_dim));
    sets.push_back({"frequencies-use-head-dim",
                    fmt::format("frequencies theta'^(-2j/D) over the head dim D = {} instead of the "
                                "rotary dim R = {}",
                                c.head_dim, r),
                    pair_frequencies(c, v)});
  }
  for (double base : other_bases(estimates, spec.base)) {
    const std::string spec_text = c.base_rescale == 1.0 ? fmt::format("the case's theta = {:.6g}", spec.base)
                                                        : fmt::format("theta * f^(R/(R-2)) = {:.6g}", spec.base);
    sets.push_back({"base-differs",
                    fmt::format("frequencies follow base theta' = {:.6g} instead of {}", base, spec_text),
                    with_base(base)});
  }
  for (DType t : {DType::bf16, DType::fp16}) {
    std::vector<double> omega = sets.front().omega;
    double worst = 0;
    long at = 0;
    for (std::size_t j = 0; j < omega.size(); ++j) {
      const double exact = omega[j] * c.interpolation;
      const double rounded = round_to(t, exact);
      if (std::fabs(rounded / exact - 1) > worst) worst = std::fabs(rounded / exact - 1), at = long(j);
      omega[j] = rounded / c.interpolation;
    }
    sets.push_back({"frequencies-rounded",
                    fmt::format("frequencies rounded to {} before the multiply: pair-dependent "
                                "relative errors up to 2^-{} (pair {} off by {:.3g})",
                                dtype_name(t), traits(t).precision, at, worst),
                    std::move(omega)});
  }
  return sets;
}

// The fits of one tensor with the angle error a frequency set explains taken out, so
// that what is left is the constant omega_j * shift of a position shift.
TensorDecomposition without_frequencies(TensorDecomposition t, const std::vector<double>& omega) {
  for (FrequencyFit& f : t.fits) {
    const double cand = omega[static_cast<std::size_t>(f.pair)];
    f.angle.slope -= cand - f.omega;
    f.omega = cand;
  }
  return t;
}

// What one tensor's fits say about its XPOS exponent: lambda_j * e * (kappa * (p + s) -
// C) against SPEC's lambda_j * e * (p - c): kappa from the slopes, C from the levels.
struct ScaleFit {
  double kappa = 1, level = 0;
  // C for a kappa (snapped or not): level = (kappa - 1) middle + kappa shift - C + c.
  double centre(double k, double middle, double shift, double spec_centre) const {
    return (k - 1) * middle + k * shift + spec_centre - level;
  }
};

std::optional<ScaleFit> fit_scale(const TensorDecomposition& t, double exponent, double middle) {
  double ss = 0, sl = 0, den = 0;
  for (const FrequencyFit& f : t.fits) {
    const double w = exponent * f.lambda;
    ss += w * f.log_scale.slope;
    sl += w * (f.log_scale.intercept + f.log_scale.slope * middle);
    den += w * w;
  }
  if (den <= 0) return std::nullopt;
  return ScaleFit{1 + ss / den, sl / den};
}

// kappa snapped to the values real code produces: 1 (SPEC), 1/alpha (the scale on
// interpolated positions), -1 (q and k scales swapped), 0 (no XPOS).
double snap_kappa(double kappa, double alpha) {
  for (double k : {1.0, 1.0 / alpha, -1.0, 0.0}) {
    if (std::fabs(kappa - k) < 0.05) return k;
  }
  return kappa;
}

double snap_centre(double centre, double kappa) {
  return kappa == 1 || kappa == -1 ? std::round(2 * centre) / 2 : centre;
}

struct Finding {
  std::string name;
  DiagnosisKind kind = DiagnosisKind::bug;
  std::string convention, explanation;
};

std::string centre_rule_of(const Case& frame, double centre) {
  for (CentreRule r : {CentreRule::queries_floor, CentreRule::queries_ceil, CentreRule::keys_floor,
                       CentreRule::keys_ceil}) {
    if (static_cast<double>(frame.centre_by(r)) == centre) return std::string(centre_rule_name(r));
  }
  return "";
}

}  // namespace

Case shifted_frame(const Case& c, double shift) {
  Case frame = c;
  frame.first_position = c.first_key_position() + static_cast<long>(shift);
  frame.center.reset();
  return frame;
}

namespace {

// The fitted parameters of one model, in the shifted positions the candidate used.
struct Fitted {
  double query_shift = 0, key_shift = 0;
  double query_kappa = 1, key_kappa = 1;
  double query_centre = 0, key_centre = 0;
  bool query_shift_read = true;  // false: too few query rows to read a shift from
};

std::string origin_text(const Case& c, double s) {
  const long shift = static_cast<long>(s);
  return fmt::format("q and k positions shifted alike by {:+}{}: keys at {}..{}, queries at {}..{} "
                     "(a common shift leaves every logit unchanged)",
                     shift, shift == c.mem_len ? " (= M, positions counted from the first cached key)" : "",
                     c.first_key_position() + shift, c.last_position() + shift,
                     c.first_query_position() + shift, c.last_position() + shift);
}

bool memory_offset_missing(const Case& c, const Fitted& f) {
  return f.query_shift == 0 && f.key_shift == static_cast<double>(c.mem_len) && c.mem_len != 0;
}

// The shift of the frame the candidate counts positions in: the one q and k share, or,
// with one side in the cache frame and the other off from it (keys at 1..M+N), the
// cache frame's (code that counts from the first cached key, one shift wrong there).
double frame_shift(const Case& c, const Fitted& f) {
  if (f.query_shift == f.key_shift) return f.query_shift;
  const double cache = static_cast<double>(-c.first_key_position());
  const bool in_cache_frame = !memory_offset_missing(c, f) && (f.query_shift == cache || f.key_shift == cache);
  return in_cache_frame ? cache : 0;
}

void name_positions(const Case& c, const Fitted& f, std::vector<Finding>& out) {
  const double frame = frame_shift(c, f);
  if (frame != 0) out.push_back({"origin", DiagnosisKind::convention, "origin", origin_text(c, frame)});
  if (f.query_shift == f.key_shift) return;
  const bool memory = memory_offset_missing(c, f);
  const char* where = frame != 0 ? " beyond the positions counted from the first cached key" : "";
  if (f.query_shift != frame)
    out.push_back({"query-position-shift", DiagnosisKind::bug, "",
                   fmt::format("query positions shifted by {:+}{}", f.query_shift - frame, where)});
  if (f.key_shift != frame) {
    out.push_back({memory ? "memory-offset-missing" : "key-position-shift", DiagnosisKind::bug, "",
                   fmt::format("key positions shifted by {:+}{}{}", f.key_shift - frame, where,
                               memory ? " (= M): the memory offset is missing" : "")});
  }
}

void name_scale(const Case& c, const Fitted& f, std::vector<Finding>& out) {
  if (f.query_kappa != f.key_kappa) {
    // Both tensors scaled by the same sigma (or both by 1/sigma): one side not inverted.
    if (f.query_kappa == 1 && f.key_kappa == -1) {
      out.push_back({"key-scale-not-inverted", DiagnosisKind::bug, "",
                     "keys scaled by sigma like the queries instead of by 1/sigma: the XPOS scale not inverted for "
                     "the keys"});
      return;
    }
    if (f.query_kappa == -1 && f.key_kappa == 1) {
      out.push_back({"query-scale-inverted", DiagnosisKind::bug, "",
                     "queries scaled by 1/sigma like the keys instead of by sigma: the XPOS scale inverted for the "
                     "queries too"});
      return;
    }
    // One tensor scaled as SPEC's, the other not at all: the scale applied to one side.
    for (const bool keys_left : {true, false}) {
      const double left = keys_left ? f.key_kappa : f.query_kappa, kept = keys_left ? f.query_kappa : f.key_kappa;
      if (left == 0 && kept == 1) {
        out.push_back({keys_left ? "xpos-missing-on-keys" : "xpos-missing-on-queries", DiagnosisKind::bug, "",
                       fmt::format("XPOS scale applied to the {} only: the {}' exponent does not grow with "
                                   "position, the {}' grows as SPEC's (p - c) / B",
                                   keys_left ? "queries" : "keys", keys_left ? "keys" : "queries",
                                   keys_left ? "queries" : "keys")});
        return;
      }
    }
    out.push_back({"xpos-exponent", DiagnosisKind::bug, "",
                   fmt::format("XPOS exponents grow {:.4g}x (queries) and {:.4g}x (keys) as fast as "
                               "SPEC's (p - c) / B",
                               f.query_kappa, f.key_kappa)});
    return;
  }
  const double k = f.query_kappa;
  if (k == 1) return;
  if (k == 0) out.push_back({"xpos-missing", DiagnosisKind::bug, "", "XPOS scale not applied"});
  else if (k == -1)
    out.push_back({"swapped-qk-scale", DiagnosisKind::bug, "",
                   "XPOS scale swapped between queries and keys: queries scaled by sigma^-1, keys by sigma"});
  else if (c.interpolation != 1 && k == 1 / c.interpolation)
    out.push_back({"xpos-interpolated", DiagnosisKind::bug, "",
                   fmt::format("XPOS scale computed on interpolated positions p / alpha (alpha = {}): "
                               "its exponent grows 1/alpha as fast as SPEC's (p - c) / B",
                               c.interpolation)});
  else
    out.push_back({"xpos-exponent", DiagnosisKind::bug, "",
                   fmt::format("XPOS exponent grows {:.4g}x as fast as SPEC's (p - c) / B", k)});
}

void name_centres(const Case& c, const Fitted& f, std::vector<Finding>& out) {
  if (!c.xpos || f.query_kappa != f.key_kappa || f.query_kappa == 0) return;
  if (f.query_kappa != 1) {
    // Centres in the units of a scaled exponent, estimated to within a fraction of a
    // position: only whether q and k agree is telling.
    if (std::fabs(f.query_centre - f.key_centre) >= 0.5)
      out.push_back({"centres-differ", DiagnosisKind::bug, "",
                     fmt::format("queries centred at {:.6g} and keys at {:.6g} (in units of the "
                                 "scaled XPOS exponent): every logit rescaled",
                                 f.query_centre, f.key_centre)});
    return;
  }
  const double common = frame_shift(c, f);
  const double expected = static_cast<double>(c.centre()) + common;
  const double q = f.query_centre, k = f.key_centre;
  if (q == k && q != expected) {
    const std::string rule = centre_rule_of(shifted_frame(c, common), q);
    out.push_back({"shared-centre", DiagnosisKind::convention, "centre",
                   fmt::format("q and k both centred at {:g} instead of {:g}{} (a common centre "
                               "leaves every logit unchanged)",
                               q, expected, rule.empty() ? "" : ": the " + rule + " rule")});
  } else if (q != k) {
    const std::string why = fmt::format(": XPOS centres {:g} positions apart rescale every logit", k - q);
    if (q == expected)
      out.push_back({"key-centre", DiagnosisKind::bug, "",
                     fmt::format("keys centred at {:g} instead of {:g}{}", k, expected, why)});
    else if (k == expected)
      out.push_back({"query-centre", DiagnosisKind::bug, "",
                     fmt::format("queries centred at {:g} instead of {:g}{}", q, expected, why)});
    else
      out.push_back({"centres-differ", DiagnosisKind::bug, "",
                     fmt::format("queries centred at {:g} and keys at {:g} instead of {:g}{}", q, k,
                                 expected, why)});
  }
}

// The grid parameters under which a convention-only candidate passes elementwise.
std::string grid_setting(const Case& c, const Fitted& f) {
  const Case frame = shifted_frame(c, f.query_shift);
  std::string out = fmt::format("first_position = {}", *frame.first_position);
  if (!c.xpos || f.query_centre == static_cast<double>(frame.centre_by(CentreRule::queries_floor)))
    return out;
  const std::string rule = centre_rule_of(frame, f.query_centre);
  return out + (rule.empty() ? fmt::format(", center = {:g}", f.query_centre)
                             : fmt::format(", center = \"{}\"", rule));
}

// The frame the fitted conventions describe, its centre set explicitly: SPEC's
// outputs there are what a convention-only candidate computes. A centre between two
// positions is the lower one and the rest of the way as the frame's offset.
ConventionFrame frame_of(const Case& c, const Fitted& f) {
  ConventionFrame frame{shifted_frame(c, f.query_shift)};
  if (!c.xpos) return frame;
  const double whole = std::floor(f.query_centre);
  frame.params.center = static_cast<long>(whole);
  frame.centre_offset = f.query_centre - whole;
  return frame;
}

// One finding more in a verdict's joined name and explanation ("a + b", "why a; why b").
void join_finding(std::string& name, std::string& explanation, const std::string& part_name,
                  const std::string& part_explanation) {
  name += (name.empty() ? "" : " + ") + part_name;
  explanation += (explanation.empty() ? "" : "; ") + part_explanation;
}

ModelVerdict verdict_of(const Case& c, const Fitted& f, const FrequencySet& set,
                        const HypothesisScore& score, const std::optional<Finding>& rounded_positions) {
  std::vector<Finding> findings;
  if (rounded_positions) findings.push_back(*rounded_positions);
  if (!set.name.empty()) findings.push_back({set.name, DiagnosisKind::bug, "", set.explanation});
  name_positions(c, f, findings);
  name_scale(c, f, findings);
  name_centres(c, f, findings);
  ModelVerdict v;
  v.score = score;
  v.kind = DiagnosisKind::convention;
  for (const Finding& x : findings) {
    join_finding(v.name, v.explanation, x.name, x.explanation);
    if (x.kind == DiagnosisKind::bug) v.kind = DiagnosisKind::bug;
    if (x.kind == DiagnosisKind::precision && v.kind == DiagnosisKind::convention) v.kind = DiagnosisKind::precision;
    if (!x.convention.empty()) v.convention += (v.convention.empty() ? "" : ",") + x.convention;
  }
  if (v.kind == DiagnosisKind::convention) {
    v.grid_setting = grid_setting(c, f);
    v.frame = frame_of(c, f);
  }
  return v;
}

// shift: the position shift of q and k alike when known (positions rounded to the
// dtype blur the angles it is otherwise read from); none: each estimated. With
// spec_kappa, the XPOS exponents grow as SPEC's and only the centres are fitted (the
// slopes of a few rounded positions say little).
Fitted fit(const Evidence& ev, const TensorDecomposition& q, const TensorDecomposition& k,
           std::optional<double> shift = std::nullopt, bool spec_kappa = false) {
  const Case& c = ev.c;
  const double n = static_cast<double>(c.seq_len), keys = static_cast<double>(c.key_rows());
  const double q_middle = static_cast<double>(c.first_query_position()) + (n - 1) / 2;
  const double k_middle = static_cast<double>(c.first_key_position()) + (keys - 1) / 2;
  Fitted f;
  const std::optional<double> q_shift = shift ? shift : position_shift(q, q_middle, n - 1);
  f.query_shift = std::round(q_shift.value_or(0));
  f.query_shift_read = q_shift.has_value();
  f.key_shift = shift ? *shift : std::round(position_shift(k, k_middle, keys - 1).value_or(0));
  const double centre = static_cast<double>(c.centre());
  f.query_centre = centre + f.query_shift;
  f.key_centre = centre + f.key_shift;
  if (!c.xpos) return f;
  if (auto s = fit_scale(q, 1, q_middle)) {
    f.query_kappa = spec_kappa ? 1.0 : snap_kappa(s->kappa, c.interpolation);
    f.query_centre = snap_centre(s->centre(f.query_kappa, q_middle, f.query_shift, centre), f.query_kappa);
  }
  if (auto s = fit_scale(k, -1, k_middle)) {
    f.key_kappa = spec_kappa ? 1.0 : snap_kappa(s->kappa, c.interpolation);
    f.key_centre = snap_centre(s->centre(f.key_kappa, k_middle, f.key_shift, centre), f.key_kappa);
  }
  return f;
}

Convention convention_of(const Case& c, const Fitted& f, const FrequencySet& set) {
  Convention v = spec_convention(c);
  if (!set.name.empty()) v.omega = set.omega;
  v.rotation = set.rotation;
  v.lambda = set.lambda;
  v.query_shift = f.query_shift;
  v.key_shift = f.key_shift;
  v.query_scale_factor = f.query_kappa;
  v.key_scale_factor = f.key_kappa;
  v.query_centre = f.query_centre;
  v.key_centre = f.key_centre;
  if (f.query_kappa == 0 && f.key_kappa == 0) v.xpos = false;
  return v;
}

// A finding the hypothesis table names, worded by the table for this case.
Finding table_finding(const Evidence& ev, std::string_view name) {
  const Context ctx{ev.c, ev.dtype, ev.record, ev.estimates, ev.decomposition, true, false, ev.stateful};
  for (const Hypothesis& h : hypotheses()) {
    if (h.name == name) return {std::string(h.name), h.kind, std::string(h.convention), explain(h, ctx)};
  }
  throw std::logic_error(fmt::format("no hypothesis {} in the table", name));
}

Finding rounded_positions_finding(const Evidence& ev, bool from_first_row) {
  Finding f = table_finding(ev, "positions-in-dtype");
  if (from_first_row) f.explanation += "; each tensor's row index made in the dtype and its first position added there";
  return f;
}

// The model with its tables stored in a 16-bit dtype: the XPOS scale folded into cos
// and sin (a fused kernel's cached tables), or a scale table of its own (code whose
// tables are tensors of the dtype); tried where the model alone does not fit.
std::optional<ModelVerdict> try_scaled_tables(const Evidence& ev, const Fitted& f, const FrequencySet& set,
                                              std::vector<HypothesisScore>& tried) {
  if (!ev.c.xpos || ev.dtype == DType::fp32) return std::nullopt;
  const std::string dtype(dtype_name(ev.dtype));
  const std::string where = fmt::format("stored in {}: entries past its largest value overflow and those below its "
                                        "normal range keep few bits, where the outputs themselves would not",
                                        dtype);
  const struct {
    Convention::DtypeTables tables;
    const char* name;
    std::string explanation;
  } ways[] = {{Convention::DtypeTables::folded, "scaled-tables-in-dtype",
               "cos and sin tables with the XPOS scale folded in (cos sigma^e, sin sigma^e) " + where},
              {Convention::DtypeTables::separate_scale, "scale-table-in-dtype",
               "the XPOS scale table sigma^e, multiplying the rotated pair, " + where}};
  const Convention model = convention_of(ev.c, f, set);
  if (!model.xpos) return std::nullopt;
  for (const auto& way : ways) {
    Convention conv = model;
    conv.tables_in_dtype = way.tables;
    HypothesisScore s = score_convention(ev, conv);
    s.name = fmt::format("fitted-model ({})", way.name);
    tried.push_back(s);
    if (!s.fits) continue;
    ModelVerdict v = verdict_of(ev.c, f, set, s, Finding{way.name, DiagnosisKind::precision, "", way.explanation});
    if (!v.name.empty()) return v;
  }
  return std::nullopt;
}

// One model: positions shifted as `shift` says (or as estimated), frequencies from
// `set`, positions rounded to the dtype or not. Its XPOS exponents are first held at
// SPEC's growth, only the centres fitted, then fitted freely: over a few positions,
// or positions blurred by rounding, a slope says little, and a fit that needs no
// other growth must not name one. The simpler model first throughout.
std::optional<ModelVerdict> try_model(const Evidence& ev, const TensorDecomposition& q, const TensorDecomposition& k,
                                      std::optional<double> shift, const FrequencySet& set, bool rounded,
                                      std::vector<HypothesisScore>& tried) {
  for (const bool spec_kappa : {true, false}) {
    const Fitted fitted = fit(ev, q, k, shift, spec_kappa);
    if (!spec_kappa && (!ev.c.xpos || (fitted.query_kappa == 1 && fitted.key_kappa == 1))) break;  // tried already
    // Centres apart by the noise of a few query rows: where the logits pass (a
    // difference of centres rescales them), q and k at the keys' centre, read off more
    // rows, first.
    std::vector<Fitted> models{fitted};
    if (ev.c.xpos && fitted.query_kappa == fitted.key_kappa && fitted.query_centre != fitted.key_centre &&
        logits_pass(ev.record)) {
      models.insert(models.begin(), fitted);
      models.front().query_centre = fitted.key_centre;
    }
    // A single query row shows no shift or scale line of its own: q as the keys read
    // (shifted alike, centred alike) first, which its outputs then confirm or not.
    if (!fitted.query_shift_read) {
      models.insert(models.begin(), fitted);
      Fitted& alike = models.front();
      alike.query_shift = fitted.key_shift;
      alike.query_kappa = fitted.key_kappa;
      alike.query_centre = fitted.key_centre;
    }
    for (const Fitted& f : models) {
      // Rounded positions: each one rounded once, or a tensor's row index rounded and
      // then its first position added in the dtype.
      for (const bool from_first_row : {false, true}) {
        if (from_first_row && !rounded) break;
        Convention conv = convention_of(ev.c, f, set);
        conv.positions_in_dtype = rounded;
        conv.rounded_from_first_row = from_first_row;
        HypothesisScore s = score_convention(ev, conv);
        s.name = from_first_row ? "fitted-model (positions-in-dtype, from the first row)"
                 : rounded      ? "fitted-model (positions-in-dtype)"
                 : set.name.empty() ? "fitted-model"
                                    : "fitted-model (" + set.name + ")";
        tried.push_back(s);
        if (!s.fits) continue;
        std::optional<Finding> finding;
        if (rounded) finding = rounded_positions_finding(ev, from_first_row);
        ModelVerdict v = verdict_of(ev.c, f, set, s, finding);
        if (!v.name.empty()) return v;
      }
      if (rounded) continue;  // the scaled tables are tried with exact positions only
      if (auto v = try_scaled_tables(ev, f, set, tried)) return v;
    }
  }
  return std::nullopt;
}

// Positions rounded to a 16-bit dtype in the candidate's own frame (a position tensor
// made in the dtype, counted from the first cached key or from SPEC's origin): the
// rounding depends on the frame and blurs the angles a shift is read from, so each
// frame whose positions reach past the dtype's exact integers is tried.
std::optional<ModelVerdict> fit_rounded_positions(const Evidence& ev, const FrequencySet& spec_set,
                                                  std::vector<HypothesisScore>& tried) {
  const Case& c = ev.c;
  if (ev.dtype == DType::fp32) return std::nullopt;
  const double exact = std::ldexp(1.0, traits(ev.dtype).precision);
  std::vector<double> shifts;
  for (double s : {0.0, -static_cast<double>(c.first_key_position())}) {
    const double reach = std::max(std::fabs(double(c.first_key_position()) + s), std::fabs(double(c.last_position()) + s));
    if (reach > exact && std::find(shifts.begin(), shifts.end(), s) == shifts.end()) shifts.push_back(s);
  }
  for (double shift : shifts) {
    if (auto v = try_model(ev, ev.decomposition[0], ev.decomposition[1], shift, spec_set, true, tried)) return v;
  }
  return std::nullopt;
}

// The rotation applied the other way (a sign slip in rotate_half, sin negated) in code
// that also has its own frame or centre: the table's reversed-rotation entry holds
// SPEC's frame, and against SPEC the angle error -2 phi wraps too fast along position
// for a shift to be read, so the decomposition is taken again against -phi. Its XPOS
// scale reads the same either way.
std::optional<ModelVerdict> fit_reversed(const Evidence& ev, const FrequencySet& spec_set,
                                         std::vector<HypothesisScore>& tried) {
  const std::vector<TensorDecomposition> reversed = decompose(ev, -1);
  const Finding finding = table_finding(ev, "reversed-rotation");
  FrequencySet set = spec_set;
  set.name = finding.name;
  set.explanation = finding.explanation;
  set.rotation = -1;
  return try_model(ev, reversed[0], reversed[1], std::nullopt, set, false, tried);
}

// SPEC's zeta_j = (2j + g R) / ((1 + g) R) has g = 0.4. The g each fitted pair's
// log-scale slope implies (its zeta_j is exp(B ln-sigma slope)), median over the pairs
// of both tensors whose zeta is far enough from 1 to tell; nothing when none is.
std::optional<double> fitted_zeta_constant(const Evidence& ev) {
  const double r = static_cast<double>(ev.c.rotary());
  std::vector<double> g;
  for (std::size_t t = 0; t < ev.decomposition.size() && t < 2; ++t) {
    const double e = t == 0 ? 1.0 : -1.0;  // q_out's exponent, then k_out's
    for (const FrequencyFit& f : ev.decomposition[t].fits) {
      const double zeta = std::exp(ev.c.scale_base * (f.lambda + e * f.log_scale.slope));
      if (!std::isfinite(zeta) || std::fabs(zeta - 1) < 0.05) continue;
      g.push_back((2.0 * static_cast<double>(f.pair) - zeta * r) / (r * (zeta - 1)));
    }
  }
  if (g.empty()) return std::nullopt;
  std::nth_element(g.begin(), g.begin() + static_cast<long>(g.size() / 2), g.end());
  const double median = g[g.size() / 2];
  if (!(median > 0) || !std::isfinite(median)) return std::nullopt;
  return median;
}

// The fitted constant rounded to one and two significant digits, apart from SPEC's.
std::vector<double> zeta_constants(const Evidence& ev) {
  std::vector<double> out;
  const std::optional<double> g = fitted_zeta_constant(ev);
  if (!g) return out;
  for (int digits = 1; digits <= 2; ++digits) {
    const double rounded = significant(*g, digits);
    if (rounded > 0 && std::fabs(rounded - 0.4) > 1e-9 &&
        std::none_of(out.begin(), out.end(), [&](double x) { return std::fabs(x - rounded) < 1e-12; }))
      out.push_back(rounded);
  }
  return out;
}

// zeta_j = (2j + 0.4 R) / (1.4 R) written the ways code gets it wrong: the pair index j
// where 2j belongs (arange(0, R/2) for arange(0, R, 2)), a partial rotary's head dim D
// where R belongs, and another constant than 0.4 (read off the fits).
std::vector<FrequencySet> zeta_sets(const Evidence& ev, const FrequencySet& spec_set) {
  const Case& c = ev.c;
  const double r = static_cast<double>(c.rotary()), d = static_cast<double>(c.head_dim);
  const auto lambdas = [&](double step, double width, double g = 0.4) {
    std::vector<double> out;
    for (long j = 0; j < c.pairs(); ++j)
      out.push_back(std::log((step * static_cast<double>(j) + g * width) / ((1 + g) * width)) / c.scale_base);
    return out;
  };
  std::vector<FrequencySet> sets;
  const auto add = [&](std::string name, std::string explanation, std::vector<double> lambda) {
    FrequencySet set = spec_set;
    set.name = std::move(name);
    set.explanation = std::move(explanation);
    set.lambda = std::move(lambda);
    sets.push_back(std::move(set));
  };
  add("zeta-pair-index", "XPOS zeta_j = (j + 0.4 R) / (1.4 R) with the pair index j where SPEC has 2j (arange(0, R/2) "
                         "for arange(0, R, 2))",
      lambdas(1, r));
  if (c.rotary() < c.head_dim)
    add("zeta-head-dim", fmt::format("XPOS zeta_j = (2j + 0.4 D) / (1.4 D) over the head dim D = {} instead of "
                                     "the rotary dim R = {}",
                                     c.head_dim, c.rotary()),
        lambdas(2, d));
  for (const double g : zeta_constants(ev))
    add("zeta-constant", fmt::format("XPOS zeta_j = (2j + {0:g} R) / ((1 + {0:g}) R): the constant {0:g} where SPEC has 0.4", g),
        lambdas(2, r, g));
  return sets;
}

// The log-scale error SPEC's zeta explains beside another zeta taken out of one
// tensor's fits (exponent e: +1 queries, -1 keys): what is left is that zeta's own
// centre and growth, read as for SPEC's.
TensorDecomposition with_zeta(TensorDecomposition t, const std::vector<double>& lambda, double e, double centre) {
  for (FrequencyFit& f : t.fits) {
    const double d = e * (lambda[static_cast<std::size_t>(f.pair)] - f.lambda);
    f.log_scale.slope -= d;
    f.log_scale.intercept += d * centre;
    f.lambda = lambda[static_cast<std::size_t>(f.pair)];
  }
  return t;
}

std::optional<ModelVerdict> fit_zeta(const Evidence& ev, const FrequencySet& spec_set,
                                     std::vector<HypothesisScore>& tried) {
  if (!ev.c.xpos) return std::nullopt;
  const double centre = static_cast<double>(ev.c.centre());
  for (const FrequencySet& set : zeta_sets(ev, spec_set)) {
    if (auto v = try_model(ev, with_zeta(ev.decomposition[0], set.lambda, 1, centre),
                           with_zeta(ev.decomposition[1], set.lambda, -1, centre), std::nullopt, set, false, tried))
      return v;
  }
  return std::nullopt;
}

// The same evidence read as if the case had `changed` (the layout, XPOS): the outputs
// and inputs are the same, the case they are judged against another.
Evidence read_as(const Evidence& ev, const Case& changed) {
  return Evidence{changed,     ev.dtype,  ev.q_in,   ev.k_in,         ev.golden,   ev.tables,
                  ev.tol,      ev.output, ev.record, ev.fresh_run,    ev.stateful, ev.q_held,
                  ev.k_held,   ev.q_rows, ev.k_rows, ev.estimates,    ev.decomposition};
}

// A frequency set carrying one finding more, joined as verdict_of joins them.
FrequencySet with_finding(FrequencySet set, const std::string& name, const std::string& explanation) {
  join_finding(set.name, set.explanation, name, explanation);
  return set;
}

// Code with no XPOS switch (torchscale's) run on a plain RoPE case: SPEC's scale, with
// the case's scale base, is taken out of the decomposition `parts` as for an XPOS case,
// and the rest fitted as for one (its centre, its growth, its frame); the finding
// comes after those of `set`, before whatever the model names.
std::optional<ModelVerdict> fit_unasked_xpos(const Evidence& ev, const std::vector<TensorDecomposition>& parts,
                                             const FrequencySet& set, std::vector<HypothesisScore>& tried) {
  if (ev.c.xpos || parts.size() != 2) return std::nullopt;
  Case scaled = ev.c;
  scaled.xpos = true;
  const FrequencySet unasked =
      with_finding(set, "xpos-unasked",
                   fmt::format("the XPOS scale applied although the case has xpos = false (plain RoPE; scale base "
                               "{:g}): code with no switch for it",
                               ev.c.scale_base));
  const std::vector<double> lambda = pair_log_zeta(scaled);
  const double centre = static_cast<double>(scaled.centre());
  return try_model(read_as(ev, scaled), with_zeta(parts[0], lambda, 1, centre), with_zeta(parts[1], lambda, -1, centre),
                   std::nullopt, unasked, false, tried);
}

// Code for the other pairing (neighbouring pairs where the case has rotate_half's, or
// the reverse) that also has its own frame, centre or XPOS: the table's wrong-layout
// entries hold SPEC's frame and the cache frame, and against SPEC's pairing the
// decomposition reads nothing, so it is taken again in the other pairing, against
// SPEC's rotation of each input pair there.
std::optional<ModelVerdict> fit_other_layout(const Evidence& ev, const FrequencySet& spec_set,
                                             std::vector<HypothesisScore>& tried) {
  Case paired = ev.c;
  paired.layout = other_layout(ev.c.layout);
  const Evidence as_paired = read_as(ev, paired);
  const std::vector<TensorDecomposition> parts = decompose(as_paired, 1, /*reference_from_inputs=*/true);
  if (parts.size() != 2) return std::nullopt;
  const Finding wrong = table_finding(ev, "wrong-layout");
  const FrequencySet set = with_finding(spec_set, wrong.name, wrong.explanation);
  if (auto v = try_model(as_paired, parts[0], parts[1], std::nullopt, set, false, tried)) return v;
  return fit_unasked_xpos(as_paired, parts, set, tried);
}

}  // namespace

std::optional<ModelVerdict> fit_model(const Evidence& ev, std::vector<HypothesisScore>& tried) {
  if (ev.decomposition.size() != 2) return std::nullopt;
  const std::vector<FrequencySet> sets = frequency_sets(ev.c, spec_convention(ev.c), ev.estimates);
  for (const FrequencySet& set : sets) {
    auto v = try_model(ev, without_frequencies(ev.decomposition[0], set.omega),
                       without_frequencies(ev.decomposition[1], set.omega), std::nullopt, set, false, tried);
    if (!v) continue;
    // Another zeta looks like an XPOS exponent grown by some factor where the dtype
    // blurs the pairs' differences: a zeta that fits closer names it.
    if (v->name.find("xpos-exponent") != std::string::npos) {
      if (auto z = fit_zeta(ev, sets.front(), tried); z && z->score.max_ratio < v->score.max_ratio) return z;
    }
    return v;
  }
  if (auto v = fit_unasked_xpos(ev, ev.decomposition, sets.front(), tried)) return v;
  if (auto v = fit_rounded_positions(ev, sets.front(), tried)) return v;
  if (auto v = fit_zeta(ev, sets.front(), tried)) return v;
  if (auto v = fit_reversed(ev, sets.front(), tried)) return v;
  return fit_other_layout(ev, sets.front(), tried);
}

}  // namespace xposcheck::diagnosis
