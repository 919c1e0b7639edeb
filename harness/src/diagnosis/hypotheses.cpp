// The one table of hypotheses. Each entry: a name, what kind of difference it is, the
// sentence that explains it, when it can apply, and the convention under which the
// candidate would be exact (or a test of its own). Order is priority: specific bugs
// first, hypotheses built from the decomposition's estimates next, the loosest (a wider
// angle allowance) last. Adding one is an entry here (docs/diagnosis.md).
#include "diagnosis/hypotheses.hpp"

#include <cmath>
#include <fmt/format.h>

namespace xposcheck::diagnosis {
namespace {

using X = Context;
using C = Convention;

// ceil((M+N)/2) - M: torchscale's centre, the middle of all M+N key rows (its
// arange(-(L+offset)//2, ...) puts power 0 on row ceil((M+N)/2)).
double key_range_centre(const Case& c) {
  return static_cast<double>((c.key_rows() + 1) / 2 - c.mem_len);
}
// floor((M+N)/2) - M: a key scale centred on the key rows while queries keep floor(N/2).
double key_rows_centre(const Case& c) { return static_cast<double>(c.key_rows() / 2 - c.mem_len); }
double centre(const Case& c) { return static_cast<double>(c.centre()); }
bool odd_default_centre(const Case& c) { return c.xpos && !c.center && c.seq_len % 2 == 1; }

// An estimate rounded to the nearest whole (or half) position; the hypothesis built
// from it is then tested exactly, so a rounding that does not fit is simply rejected.
std::optional<double> whole(const std::optional<double>& v) {
  return v ? std::optional(std::round(*v)) : std::nullopt;
}
std::optional<double> half(const std::optional<double>& v) {
  return v ? std::optional(std::round(2 * *v) / 2) : std::nullopt;
}
bool differs(const std::optional<double>& v, double from) { return v && *v != from; }

double angle_error_per_phi_eps(const X& x) {
  double per_phi = 0;
  for (const TensorDecomposition& t : x.parts) {
    per_phi = std::max(per_phi, t.angle_error_per_phi_eps);
  }
  return per_phi;
}

const char* layout_pairs(Layout l) {
  return l == Layout::half ? "half (j, j+R/2)" : "interleaved (2j, 2j+1)";
}

}  // namespace

std::string_view kind_name(Kind k) {
  switch (k) {
    case Kind::bug: return "bug";
    case Kind::convention: return "convention";
    case Kind::precision: return "precision";
  }
  return "bug";
}

const std::vector<Hypothesis>& hypotheses() {
  static const std::vector<Hypothesis> table = {
      {.name = "unsliced-scale",
       .explanation = "a table built for all M+N = {MN} key rows was applied to the N = {N} query "
                      "rows without slicing to the last N (the x-transformers unsliced XPOS scale)",
       .applies = [](const X& x) {
         return x.record.outcome == Outcome::dim_mismatch && x.record.shape && x.c.mem_len > 0;
       },
       .test = test_unsliced_table},
      {.name = "envelope-edge", .kind = Kind::precision,
       .explanation = "SPEC itself fits the sampled rows, the failing ones included: the "
                      "non-finite values lie where the golden value is within tolerance of "
                      "{dtype}'s largest value, the edge of the dtype's envelope",
       .applies = [](const X& x) {
         return x.record.outcome == Outcome::nonfinite || x.record.outcome == Outcome::out_of_range;
       },
       .perturb = [](const X&, C v) { return v; }},
      {.name = "history-dependence",
       .explanation = "results depend on call history (a stale cache): a fresh instance of the "
                      "candidate gives different outputs for the same case",
       .applies = [](const X& x) { return x.can_rerun && x.stateful; },
       .test = test_history},
      {.name = "wrong-layout",
       .explanation = "features paired with the {other_layout} layout instead of {layout}",
       .applies = [](const X& x) { return x.c.rotary() >= 4; },
       .perturb = [](const X&, C v) {
         v.layout = v.layout == Layout::half ? Layout::interleaved : Layout::half;
         return v;
       }},
      {.name = "memory-offset-missing",
       .explanation = "key positions shifted by +{M} (= M): the memory offset is missing (keys at "
                      "0..M+N-1 instead of -M..N-1)",
       .applies = [](const X& x) { return x.c.mem_len > 0; },
       .perturb = [](const X& x, C v) {
         v.key_shift = static_cast<double>(x.c.mem_len);
         return v;
       }},
      {.name = "reversed-rotation",
       .explanation = "rotation direction reversed: outputs match SPEC with phi -> -phi (the sign "
                      "of sin flipped)",
       .applies = [](const X& x) { return x.c.seq_len > 1 || x.c.mem_len > 0; },
       .perturb = [](const X&, C v) { v.rotation = -1; return v; }},
      {.name = "swapped-qk-scale",
       .explanation = "XPOS scale swapped between queries and keys: queries scaled by sigma^-1, "
                      "keys by sigma",
       .applies = [](const X& x) { return x.c.xpos; },
       .perturb = [](const X&, C v) { v.query_exponent = -1; v.key_exponent = 1; return v; }},
      {.name = "xpos-missing",
       .explanation = "XPOS scale not applied: outputs match plain RoPE",
       .applies = [](const X& x) { return x.c.xpos; },
       .perturb = [](const X&, C v) { v.xpos = false; return v; }},
      {.name = "scale-on-passthrough",
       .explanation = "XPOS scale applied to the pass-through features {R}..{last}, which must be "
                      "copied bit-exactly",
       .applies = [](const X& x) { return x.c.xpos && x.c.rotary() < x.c.head_dim; },
       .perturb = [](const X&, C v) { v.scale_passthrough = true; return v; }},
      {.name = "interpolation-missing",
       .explanation = "position interpolation alpha = {alpha} not applied: angles p*omega instead "
                      "of p*omega/alpha",
       .applies = [](const X& x) { return x.c.interpolation != 1.0; },
       .perturb = [](const X&, C v) { v.interpolation = 1; return v; }},
      {.name = "interpolation-twice",
       .explanation = "position interpolation applied twice: angles p*omega/alpha^2 (alpha = "
                      "{alpha})",
       .applies = [](const X& x) { return x.c.interpolation != 1.0; },
       .perturb = [](const X& x, C v) { v.interpolation *= x.c.interpolation; return v; }},
      {.name = "ntk-exponent",
       .explanation = "NTK base rescale without its exponent: theta * f = {theta_f:.6g} instead of "
                      "theta * f^(R/(R-2)) = {theta_spec:.6g}",
       .applies = [](const X& x) { return x.c.base_rescale != 1.0; },
       .perturb = [](const X& x, C v) { v.base = x.c.base * x.c.base_rescale; return v; }},
      {.name = "ntk-missing",
       .explanation = "NTK base rescale f = {f} not applied: base theta = {theta:.6g} instead of "
                      "{theta_spec:.6g}",
       .applies = [](const X& x) { return x.c.base_rescale != 1.0; },
       .perturb = [](const X& x, C v) { v.base = x.c.base; return v; }},
      {.name = "centre-key-range", .kind = Kind::convention, .convention = "centre",
       .explanation = "centre on the whole key range (torchscale): q and k both centred at "
                      "ceil((M+N)/2) - M = {key_range_centre} instead of {c}",
       .applies = [](const X& x) { return x.c.xpos && key_range_centre(x.c) != centre(x.c); },
       .perturb = [](const X& x, C v) {
         v.query_centre = v.key_centre = key_range_centre(x.c);
         return v;
       }},
      {.name = "centres-differ",
       .explanation = "queries centred at {c} but keys at floor((M+N)/2) - M = {key_rows_centre}: "
                      "the key scale is centred on the M+N key rows",
       .applies = [](const X& x) { return x.c.xpos && key_rows_centre(x.c) != centre(x.c); },
       .perturb = [](const X& x, C v) { v.key_centre = key_rows_centre(x.c); return v; }},
      {.name = "centre-unrounded",
       .explanation = "XPOS centre N/2 = {half_N} not rounded to floor(N/2) = {c} (odd N, true "
                      "division); q and k alike, so logits are unaffected",
       .applies = [](const X& x) { return odd_default_centre(x.c); },
       .perturb = [](const X& x, C v) {
         v.query_centre = v.key_centre = static_cast<double>(x.c.seq_len) / 2;
         return v;
       }},
      {.name = "centre-rounded-up",
       .explanation = "XPOS centre ceil(N/2) = {ceil_N} instead of floor(N/2) = {c} (odd N rounded "
                      "up); q and k alike, so logits are unaffected",
       .applies = [](const X& x) { return odd_default_centre(x.c); },
       .perturb = [](const X& x, C v) {
         v.query_centre = v.key_centre = static_cast<double>((x.c.seq_len + 1) / 2);
         return v;
       }},
      {.name = "centre-at-length",
       .explanation = "XPOS centre at N = {N} instead of floor(N/2) = {c}",
       .applies = [](const X& x) { return x.c.xpos && !x.c.center; },
       .perturb = [](const X& x, C v) {
         v.query_centre = v.key_centre = static_cast<double>(x.c.seq_len);
         return v;
       }},
      {.name = "key-position-shift",
       .explanation = "key positions shifted by {key_shift:+} (read from the angle error: "
                      "constant over position, {key_shift:+} * omega_j)",
       .applies = [](const X& x) {
         const auto s = whole(x.estimates.key_shift);
         return s && *s != 0 && *s != static_cast<double>(x.c.mem_len);
       },
       .perturb = [](const X& x, C v) { v.key_shift = *whole(x.estimates.key_shift); return v; }},
      {.name = "query-position-shift",
       .explanation = "query positions shifted by {query_shift:+} (read from the angle error)",
       .applies = [](const X& x) { return differs(whole(x.estimates.query_shift), 0); },
       .perturb = [](const X& x, C v) {
         v.query_shift = *whole(x.estimates.query_shift);
         return v;
       }},
      {.name = "shared-centre",
       .explanation = "q and k both centred at {query_centre} instead of {c} (read from the "
                      "log-scale error); logits are unaffected",
       .applies = [](const X& x) {
         const auto q = half(x.estimates.query_centre);
         return differs(q, centre(x.c)) && q == half(x.estimates.key_centre);
       },
       .perturb = [](const X& x, C v) {
         v.query_centre = v.key_centre = *half(x.estimates.query_centre);
         return v;
       }},
      {.name = "key-centre",
       .explanation = "keys centred at {key_centre} instead of {c} (read from the log-scale error)",
       .applies = [](const X& x) { return differs(half(x.estimates.key_centre), centre(x.c)); },
       .perturb = [](const X& x, C v) { v.key_centre = *half(x.estimates.key_centre); return v; }},
      {.name = "query-centre",
       .explanation = "queries centred at {query_centre} instead of {c} (read from the log-scale "
                      "error)",
       .applies = [](const X& x) { return differs(half(x.estimates.query_centre), centre(x.c)); },
       .perturb = [](const X& x, C v) {
         v.query_centre = *half(x.estimates.query_centre);
         return v;
       }},
      {.name = "angles-in-dtype", .kind = Kind::precision,
       .explanation = "angles p*omega formed in {dtype}: the angle error grows like |phi| * 2^-{p} "
                      "(measured rms {per_phi:.2g} |phi| eps at |phi| >= 8), beyond fp32-rounded "
                      "angles",
       .applies = [](const X& x) { return x.dtype != DType::fp32; },
       .perturb = [](const X&, C v) { v.angle_unit_ratio = 1; return v; }},
      {.name = "history-dependence",
       .explanation = "results depend on call history: a fresh instance of the candidate gives "
                      "different outputs for the same case",
       .applies = [](const X& x) { return x.can_rerun && !x.stateful; },
       .test = test_history},
  };
  return table;
}

std::string explain(const Hypothesis& h, const Context& x) {
  const Case& c = x.c;
  const Estimates& e = x.estimates;
  const Layout other = c.layout == Layout::half ? Layout::interleaved : Layout::half;
  try {
    return fmt::format(
        fmt::runtime(h.explanation), fmt::arg("M", c.mem_len), fmt::arg("N", c.seq_len),
        fmt::arg("MN", c.key_rows()), fmt::arg("R", c.rotary()), fmt::arg("last", c.head_dim - 1),
        fmt::arg("c", c.centre()), fmt::arg("alpha", c.interpolation),
        fmt::arg("f", c.base_rescale), fmt::arg("theta", c.base),
        fmt::arg("theta_f", c.base * c.base_rescale), fmt::arg("theta_spec", rescaled_base(c)),
        fmt::arg("key_range_centre", key_range_centre(c)),
        fmt::arg("key_rows_centre", key_rows_centre(c)),
        fmt::arg("half_N", static_cast<double>(c.seq_len) / 2),
        fmt::arg("ceil_N", (c.seq_len + 1) / 2),
        fmt::arg("key_shift", whole(e.key_shift).value_or(0)),
        fmt::arg("query_shift", whole(e.query_shift).value_or(0)),
        fmt::arg("query_centre", half(e.query_centre).value_or(centre(c))),
        fmt::arg("key_centre", half(e.key_centre).value_or(centre(c))),
        fmt::arg("layout", layout_pairs(c.layout)), fmt::arg("other_layout", layout_pairs(other)),
        fmt::arg("dtype", dtype_name(x.dtype)), fmt::arg("p", traits(x.dtype).precision),
        fmt::arg("per_phi", angle_error_per_phi_eps(x)));
  } catch (const fmt::format_error& err) {
    // A template naming an argument that does not exist: say so rather than crash a sweep.
    return fmt::format("{} (explanation template error: {})", h.explanation, err.what());
  }
}

}  // namespace xposcheck::diagnosis
