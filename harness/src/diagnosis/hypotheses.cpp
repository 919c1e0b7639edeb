// The one table of hypotheses. Each entry: a name, what kind of difference it is,
// when it can apply, and the convention under which the candidate would be exact (or a
// test of its own), with the sentence that explains it. Order is priority: specific
// bugs first, hypotheses built from the decomposition's estimates next, the loosest
// (a wider angle allowance) last. Adding one is an entry here (docs/diagnosis.md).
#include "diagnosis/hypotheses.hpp"

#include <cmath>
#include <fmt/format.h>

namespace xposcheck::diagnosis {
namespace {

// ceil((M+N)/2) - M: torchscale's centre, the middle of all M+N key rows (its
// arange(-(L+offset)//2, ...) puts power 0 on row ceil((M+N)/2)).
double key_range_centre(const Case& c) { return static_cast<double>((c.key_rows() + 1) / 2 - c.mem_len); }
// floor((M+N)/2) - M: a key scale centred on the key rows while queries keep floor(N/2).
double key_rows_centre(const Case& c) { return static_cast<double>(c.key_rows() / 2 - c.mem_len); }
double spec_centre(const Case& c) { return static_cast<double>(c.centre()); }
bool odd_default_centre(const Case& c) { return c.xpos && !c.center && c.seq_len % 2 == 1; }

// An estimate rounded to the nearest whole (or half) position; the hypothesis built
// from it is then tested exactly, so a rounding that does not fit is simply rejected.
std::optional<double> whole(const std::optional<double>& v) {
  if (!v) return std::nullopt;
  return std::round(*v);
}
std::optional<double> half(const std::optional<double>& v) {
  if (!v) return std::nullopt;
  return std::round(2 * *v) / 2;
}
bool differs(const std::optional<double>& v, double from) { return v && *v != from; }

std::string angle_precision(const Context& x) {
  double per_phi = 0;
  for (const TensorDecomposition& t : x.parts) per_phi = std::max(per_phi, t.angle_error_per_phi_eps);
  return fmt::format("angles p*omega formed in {}: the angle error grows like |phi| * 2^-{} "
                     "(measured rms {:.2g} |phi| eps at |phi| >= 8), beyond fp32-rounded angles",
                     dtype_name(x.dtype), traits(x.dtype).precision, per_phi);
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
  using C = Convention;
  static const std::vector<Hypothesis> table = {
      {"unsliced-scale", Kind::bug, "",
       [](const Context& x) { return x.record.outcome == Outcome::dim_mismatch && x.record.shape && x.c.mem_len > 0; },
       nullptr, test_unsliced_table,
       [](const Context& x) { return fmt::format("a table built for all M+N = {} key rows was applied to the N = {} query rows without slicing to the last N (the x-transformers unsliced XPOS scale)", x.c.key_rows(), x.c.seq_len); }},
      {"history-dependence", Kind::bug, "",
       [](const Context& x) { return x.can_rerun && x.stateful; }, nullptr, test_history,
       [](const Context&) { return std::string("results depend on call history (a stale cache): a fresh instance of the candidate gives different outputs for the same case"); }},
      {"wrong-layout", Kind::bug, "",
       [](const Context& x) { return x.c.rotary() >= 4; },
       [](const Context&, C v) { v.layout = v.layout == Layout::half ? Layout::interleaved : Layout::half; return v; }, nullptr,
       [](const Context& x) { return fmt::format("features paired with the {} layout instead of {}", x.c.layout == Layout::half ? "interleaved (2j, 2j+1)" : "half (j, j+R/2)", x.c.layout == Layout::half ? "half (j, j+R/2)" : "interleaved (2j, 2j+1)"); }},
      {"memory-offset-missing", Kind::bug, "",
       [](const Context& x) { return x.c.mem_len > 0; },
       [](const Context& x, C v) { v.key_shift = static_cast<double>(x.c.mem_len); return v; }, nullptr,
       [](const Context& x) { return fmt::format("key positions shifted by +{} (= M): the memory offset is missing (keys at 0..M+N-1 instead of -M..N-1)", x.c.mem_len); }},
      {"reversed-rotation", Kind::bug, "",
       [](const Context& x) { return x.c.seq_len > 1 || x.c.mem_len > 0; },
       [](const Context&, C v) { v.rotation = -1; return v; }, nullptr,
       [](const Context&) { return std::string("rotation direction reversed: outputs match SPEC with phi -> -phi (the sign of sin flipped)"); }},
      {"swapped-qk-scale", Kind::bug, "",
       [](const Context& x) { return x.c.xpos; },
       [](const Context&, C v) { v.query_exponent = -1; v.key_exponent = 1; return v; }, nullptr,
       [](const Context&) { return std::string("XPOS scale swapped between queries and keys: queries scaled by sigma^-1, keys by sigma"); }},
      {"xpos-missing", Kind::bug, "",
       [](const Context& x) { return x.c.xpos; },
       [](const Context&, C v) { v.xpos = false; return v; }, nullptr,
       [](const Context&) { return std::string("XPOS scale not applied: outputs match plain RoPE"); }},
      {"scale-on-passthrough", Kind::bug, "",
       [](const Context& x) { return x.c.xpos && x.c.rotary() < x.c.head_dim; },
       [](const Context&, C v) { v.scale_passthrough = true; return v; }, nullptr,
       [](const Context& x) { return fmt::format("XPOS scale applied to the pass-through features {}..{}, which must be copied bit-exactly", x.c.rotary(), x.c.head_dim - 1); }},
      {"interpolation-missing", Kind::bug, "",
       [](const Context& x) { return x.c.interpolation != 1.0; },
       [](const Context&, C v) { v.interpolation = 1; return v; }, nullptr,
       [](const Context& x) { return fmt::format("position interpolation alpha = {} not applied: angles p*omega instead of p*omega/alpha", x.c.interpolation); }},
      {"interpolation-twice", Kind::bug, "",
       [](const Context& x) { return x.c.interpolation != 1.0; },
       [](const Context& x, C v) { v.interpolation = x.c.interpolation * x.c.interpolation; return v; }, nullptr,
       [](const Context& x) { return fmt::format("position interpolation applied twice: angles p*omega/alpha^2 (alpha = {})", x.c.interpolation); }},
      {"ntk-exponent", Kind::bug, "",
       [](const Context& x) { return x.c.base_rescale != 1.0; },
       [](const Context& x, C v) { v.base = x.c.base * x.c.base_rescale; return v; }, nullptr,
       [](const Context& x) { return fmt::format("NTK base rescale without its exponent: theta * f = {:.6g} instead of theta * f^(R/(R-2)) = {:.6g}", x.c.base * x.c.base_rescale, rescaled_base(x.c)); }},
      {"ntk-missing", Kind::bug, "",
       [](const Context& x) { return x.c.base_rescale != 1.0; },
       [](const Context& x, C v) { v.base = x.c.base; return v; }, nullptr,
       [](const Context& x) { return fmt::format("NTK base rescale f = {} not applied: base theta = {:.6g} instead of {:.6g}", x.c.base_rescale, x.c.base, rescaled_base(x.c)); }},
      {"centre-key-range", Kind::convention, "centre",
       [](const Context& x) { return x.c.xpos && key_range_centre(x.c) != spec_centre(x.c); },
       [](const Context& x, C v) { v.query_centre = v.key_centre = key_range_centre(x.c); return v; }, nullptr,
       [](const Context& x) { return fmt::format("centre on the whole key range (torchscale): q and k both centred at ceil((M+N)/2) - M = {} instead of {}", key_range_centre(x.c), spec_centre(x.c)); }},
      {"centres-differ", Kind::bug, "",
       [](const Context& x) { return x.c.xpos && key_rows_centre(x.c) != spec_centre(x.c); },
       [](const Context& x, C v) { v.key_centre = key_rows_centre(x.c); return v; }, nullptr,
       [](const Context& x) { return fmt::format("queries centred at {} but keys at floor((M+N)/2) - M = {}: the key scale is centred on the M+N key rows", spec_centre(x.c), key_rows_centre(x.c)); }},
      {"centre-unrounded", Kind::bug, "",
       [](const Context& x) { return odd_default_centre(x.c); },
       [](const Context& x, C v) { v.query_centre = v.key_centre = x.c.seq_len / 2.0; return v; }, nullptr,
       [](const Context& x) { return fmt::format("XPOS centre N/2 = {} not rounded to floor(N/2) = {} (odd N, true division); q and k alike, so logits are unaffected", x.c.seq_len / 2.0, x.c.centre()); }},
      {"centre-rounded-up", Kind::bug, "",
       [](const Context& x) { return odd_default_centre(x.c); },
       [](const Context& x, C v) { v.query_centre = v.key_centre = static_cast<double>((x.c.seq_len + 1) / 2); return v; }, nullptr,
       [](const Context& x) { return fmt::format("XPOS centre ceil(N/2) = {} instead of floor(N/2) = {} (odd N rounded up)", (x.c.seq_len + 1) / 2, x.c.centre()); }},
      {"centre-at-length", Kind::bug, "",
       [](const Context& x) { return x.c.xpos && !x.c.center; },
       [](const Context& x, C v) { v.query_centre = v.key_centre = static_cast<double>(x.c.seq_len); return v; }, nullptr,
       [](const Context& x) { return fmt::format("XPOS centre at N = {} instead of floor(N/2) = {}", x.c.seq_len, x.c.centre()); }},
      {"key-position-shift", Kind::bug, "",
       [](const Context& x) { auto s = whole(x.estimates.key_shift); return s && *s != 0 && *s != static_cast<double>(x.c.mem_len); },
       [](const Context& x, C v) { v.key_shift = *whole(x.estimates.key_shift); return v; }, nullptr,
       [](const Context& x) { return fmt::format("key positions shifted by {:+} (read from the angle error: constant over position, {:+} * omega_j)", *whole(x.estimates.key_shift), *whole(x.estimates.key_shift)); }},
      {"query-position-shift", Kind::bug, "",
       [](const Context& x) { auto s = whole(x.estimates.query_shift); return s && *s != 0; },
       [](const Context& x, C v) { v.query_shift = *whole(x.estimates.query_shift); return v; }, nullptr,
       [](const Context& x) { return fmt::format("query positions shifted by {:+} (read from the angle error)", *whole(x.estimates.query_shift)); }},
      {"shared-centre", Kind::bug, "",
       [](const Context& x) { auto q = half(x.estimates.query_centre); return differs(q, spec_centre(x.c)) && q == half(x.estimates.key_centre); },
       [](const Context& x, C v) { v.query_centre = v.key_centre = *half(x.estimates.query_centre); return v; }, nullptr,
       [](const Context& x) { return fmt::format("q and k both centred at {} instead of {} (read from the log-scale error); logits are unaffected", *half(x.estimates.query_centre), spec_centre(x.c)); }},
      {"key-centre", Kind::bug, "",
       [](const Context& x) { return differs(half(x.estimates.key_centre), spec_centre(x.c)); },
       [](const Context& x, C v) { v.key_centre = *half(x.estimates.key_centre); return v; }, nullptr,
       [](const Context& x) { return fmt::format("keys centred at {} instead of {} (read from the log-scale error)", *half(x.estimates.key_centre), spec_centre(x.c)); }},
      {"query-centre", Kind::bug, "",
       [](const Context& x) { return differs(half(x.estimates.query_centre), spec_centre(x.c)); },
       [](const Context& x, C v) { v.query_centre = *half(x.estimates.query_centre); return v; }, nullptr,
       [](const Context& x) { return fmt::format("queries centred at {} instead of {} (read from the log-scale error)", *half(x.estimates.query_centre), spec_centre(x.c)); }},
      {"angles-in-dtype", Kind::precision, "",
       [](const Context& x) { return x.dtype != DType::fp32; },
       [](const Context&, C v) { v.angle_unit_ratio = 1; return v; }, nullptr,
       angle_precision},
      {"history-dependence", Kind::bug, "",
       [](const Context& x) { return x.can_rerun && !x.stateful; }, nullptr, test_history,
       [](const Context&) { return std::string("results depend on call history: a fresh instance of the candidate gives different outputs for the same case"); }},
  };
  return table;
}

}  // namespace xposcheck::diagnosis
