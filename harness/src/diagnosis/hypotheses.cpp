// The one table of hypotheses. Each entry: a name, what kind of difference it is, the
// sentence that explains it, when it can apply, and the convention under which the
// candidate would be exact (or a test of its own). Order is priority: specific bugs
// first, hypotheses built from the decomposition's estimates next, the loosest (a wider
// angle allowance) last. Adding one is an entry here (docs/diagnosis.md).
#include "diagnosis/hypotheses.hpp"
#include "diagnosis/stream_frames.hpp"

#include <cmath>
#include <fmt/format.h>

namespace xposcheck::diagnosis {
namespace {

// ceil((M+N)/2) from the first key: torchscale's centre, the middle of all M+N key rows
// (its arange(-(L+offset)//2, ...) puts power 0 on row ceil((M+N)/2)).
double key_range_centre(const Case& c) { return static_cast<double>(c.centre_by(CentreRule::keys_ceil)); }
// floor((M+N)/2) from the first key: a key scale centred on the key rows while queries
// keep floor(N/2).
double key_rows_centre(const Case& c) { return static_cast<double>(c.centre_by(CentreRule::keys_floor)); }
double centre(const Case& c) { return static_cast<double>(c.centre()); }
// The shift that puts the first key at position 0: the cache frame.
long cache_shift(const Case& c) { return -c.first_key_position(); }
bool odd_default_centre(const Case& c) { return c.xpos && !c.center && c.seq_len % 2 == 1; }
// floor(N/2) from the first query, and that plus a half.
double half_queries(const Case& c) {
  return static_cast<double>(c.first_query_position()) + static_cast<double>(c.seq_len) / 2;
}

// Perturbations move the convention relative to where it stands, so that the same
// entry applies on top of a frame convention (combinations, docs/diagnosis.md).
Convention move_centres(const Case& c, Convention v, double to) {
  v.query_centre += to - centre(c);
  v.key_centre += to - centre(c);
  return v;
}

double angle_error_per_phi_eps(const Context& x) {
  double per_phi = 0;
  for (const TensorDecomposition& t : x.parts) {
    per_phi = std::max(per_phi, t.angle_error_per_phi_eps);
  }
  return per_phi;
}

// The frame of a centre convention: the case centred at floor(centre), moved on by
// the fraction of a position left.
ConventionFrame centred_at(const Case& c, double centre) {
  ConventionFrame frame{c, centre - std::floor(centre)};
  frame.params.center = static_cast<long>(std::floor(centre));
  return frame;
}

}  // namespace

const char* layout_pairs(Layout l) {
  return l == Layout::half ? "half (j, j+R/2)" : "interleaved (2j, 2j+1)";
}

const std::vector<Hypothesis>& hypotheses() {
  static const std::vector<Hypothesis> table = {
      {.name = "unsliced-scale",
       .explanation = "a table built for all M+N = {MN} key rows was applied to the N = {N} query "
                      "rows without slicing to the last N (the x-transformers unsliced XPOS scale)",
       .applies = [](const Context& x) {
         return x.record.outcome == Outcome::dim_mismatch && x.record.shape && x.c.mem_len > 0;
       },
       .test = test_unsliced_table},
      {.name = "memory-rows-missing",
       .explanation = "k_out holds the N = {N} current rows only: the M = {M} memory keys were "
                      "left out of the keys (they must come first, M + N = {MN} rows)",
       .applies = [](const Context& x) {
         return x.record.outcome == Outcome::dim_mismatch && x.record.shape && x.c.mem_len > 0;
       },
       .test = test_memory_rows_missing},
      {.name = "envelope-edge", .kind = DiagnosisKind::precision,
       .explanation = "SPEC itself fits the sampled rows, the failing ones included: the "
                      "non-finite values lie where the golden value is within tolerance of "
                      "{dtype}'s largest value, the edge of the dtype's envelope",
       .applies = [](const Context& x) {
         return x.record.outcome == Outcome::nonfinite || x.record.outcome == Outcome::out_of_range;
       },
       .perturb = [](const Context&, Convention v) { return v; }},
      // Streams: bugs between calls, tried before any one-call explanation.
      {.name = "positions-restart",
       .explanation = "every call counts its positions from 0: the decode offset is lost, so each "
                      "step of {k} row(s) is rotated as positions 0..{k_1} instead of its own",
       .applies = [](const Context& x) { return x.c.stream.has_value(); },
       .perturb = [](const Context&, Convention v) { v.row_frame = positions_restart; return v; }},
      {.name = "cache-without-offset",
       .explanation = "rotary tables cached by call length without the offset: every later call "
                      "of {k} row(s) reuses the positions of the first such call",
       .applies = [](const Context& x) { return x.c.stream.has_value(); },
       .perturb = [](const Context&, Convention v) { v.row_frame = cache_without_offset; return v; }},
      {.name = "table-at-first-length",
       .explanation = "rotary tables sized at the first call ({first_call_keys} key rows) and "
                      "indexed modulo that length by later calls: positions past it wrap around",
       .applies = [](const Context& x) { return x.c.stream.has_value(); },
       .perturb = [](const Context&, Convention v) { v.row_frame = table_at_first_length; return v; }},
      {.name = "centre-moves",
       .explanation = "the XPOS centre follows each call's own rows while the keys of earlier "
                      "calls stay cached with theirs: a logit between calls whose centres differ "
                      "by dc is scaled by zeta^(dc/B) (B = {B})",
       .applies = [](const Context& x) { return x.c.stream.has_value() && x.c.xpos; },
       .test = test_moving_centre},
      {.name = "wrong-layout",
       .explanation = "features paired with the {other_layout} layout instead of {layout}",
       .applies = [](const Context& x) { return x.c.rotary() >= 4; },
       .perturb = [](const Context&, Convention v) {
         v.layout = other_layout(v.layout);
         return v;
       }},
      // Code written for the other pairing usually also counts positions from the first
      // cached key (released modules do): both at once, else neither hypothesis fits.
      {.name = "wrong-layout + origin",
       .explanation = "features paired with the {other_layout} layout instead of {layout}, and q and k "
                      "positions counted from the first cached key (shifted alike by {cache_shift:+})",
       .applies = [](const Context& x) {
         return x.c.rotary() >= 4 && cache_shift(x.c) != 0 && !x.c.positions && !x.c.packed;
       },
       .perturb = [](const Context& x, Convention v) {
         v.layout = other_layout(v.layout);
         const double s = static_cast<double>(cache_shift(x.c));
         v.query_shift += s;
         v.key_shift += s;
         v.query_centre += s;
         v.key_centre += s;
         return v;
       }},
      {.name = "memory-offset-missing",
       .explanation = "key positions shifted by +{M} (= M): the memory offset is missing (keys "
                      "counted from the first query, not from the first of the M memory keys)",
       .applies = [](const Context& x) { return x.c.mem_len > 0; },
       .perturb = [](const Context& x, Convention v) {
         v.key_shift += static_cast<double>(x.c.mem_len);
         return v;
       }},
      {.name = "reversed-rotation",
       .explanation = "rotation direction reversed: outputs match SPEC with phi -> -phi (the sign "
                      "of sin flipped)",
       .applies = [](const Context& x) { return x.c.seq_len > 1 || x.c.mem_len > 0; },
       .perturb = [](const Context&, Convention v) { v.rotation = -v.rotation; return v; }},
      {.name = "swapped-qk-scale",
       .explanation = "XPOS scale swapped between queries and keys: queries scaled by sigma^-1, "
                      "keys by sigma",
       .applies = [](const Context& x) { return x.c.xpos; },
       .perturb = [](const Context&, Convention v) {
         std::swap(v.query_exponent, v.key_exponent);
         return v;
       }},
      {.name = "xpos-missing",
       .explanation = "XPOS scale not applied: outputs match plain RoPE",
       .applies = [](const Context& x) { return x.c.xpos; },
       .perturb = [](const Context&, Convention v) { v.xpos = false; return v; }},
      {.name = "scale-on-passthrough",
       .explanation = "XPOS scale applied to the pass-through features {R}..{last}, which must be "
                      "copied bit-exactly ({passthrough_scale})",
       .applies = [](const Context& x) { return x.c.xpos && x.c.rotary() < x.c.head_dim; },
       .perturb = [](const Context& x, Convention v) {
         v.passthrough_pair = x.estimates.passthrough_pair.value_or(-1);
         return v;
       }},
      {.name = "rotary-last-features",
       .explanation = "the last R features {first_last}..{last} rotated instead of the first R "
                      "(0..{R_1}): partial rotary applied to the wrong end of the head",
       .applies = [](const Context& x) { return x.c.rotary() < x.c.head_dim; },
       .perturb = [](const Context& x, Convention v) {
         v.rotary_offset = x.c.head_dim - x.c.rotary();
         return v;
       }},
      {.name = "interpolation-missing",
       .explanation = "position interpolation alpha = {alpha} not applied: angles p*omega instead "
                      "of p*omega/alpha",
       .applies = [](const Context& x) { return x.c.interpolation != 1.0; },
       .perturb = [](const Context&, Convention v) { v.interpolation = 1; return v; }},
      {.name = "interpolation-twice",
       .explanation = "position interpolation applied twice: angles p*omega/alpha^2 (alpha = "
                      "{alpha})",
       .applies = [](const Context& x) { return x.c.interpolation != 1.0; },
       .perturb = [](const Context& x, Convention v) { v.interpolation *= x.c.interpolation; return v; }},
      {.name = "ntk-exponent",
       .explanation = "NTK base rescale without its exponent: theta * f = {theta_f:.6g} instead of "
                      "theta * f^(R/(R-2)) = {theta_spec:.6g}",
       .applies = [](const Context& x) { return x.c.base_rescale != 1.0; },
       .perturb = [](const Context& x, Convention v) { v.base = x.c.base * x.c.base_rescale; return v; }},
      {.name = "ntk-missing",
       .explanation = "NTK base rescale f = {f} not applied: base theta = {theta:.6g} instead of "
                      "{theta_spec:.6g}",
       .applies = [](const Context& x) { return x.c.base_rescale != 1.0; },
       .perturb = [](const Context& x, Convention v) { v.base = x.c.base; return v; }},
      {.name = "centre-key-range", .kind = DiagnosisKind::convention, .convention = "centre",
       .grid_setting = "center = \"keys-ceil\"",
       .explanation = "centre on the whole key range (torchscale): q and k both centred at "
                      "ceil((M+N)/2) from the first key = {key_range_centre} instead of {c}",
       .applies = [](const Context& x) { return x.c.xpos && key_range_centre(x.c) != centre(x.c); },
       .perturb = [](const Context& x, Convention v) { return move_centres(x.c, v, key_range_centre(x.c)); },
       .frame = [](const Context& x) { return centred_at(x.c, key_range_centre(x.c)); }},
      {.name = "centres-differ",
       .explanation = "queries centred at {c} but keys at floor((M+N)/2) from the first key = "
                      "{key_rows_centre}: the key scale is centred on the M+N key rows",
       .applies = [](const Context& x) { return x.c.xpos && key_rows_centre(x.c) != centre(x.c); },
       .perturb = [](const Context& x, Convention v) {
         v.key_centre += key_rows_centre(x.c) - centre(x.c);
         return v;
       }},
      // A centre q and k share is a convention (SPEC section 1), a half position included:
      // no grid can set that one, so its frame moves SPEC's outputs by the half.
      {.name = "centre-unrounded", .kind = DiagnosisKind::convention, .convention = "centre",
       .explanation = "XPOS centre N/2 = {half_N} not rounded to floor(N/2) = {c} (odd N, true "
                      "division); q and k alike, so logits are unaffected",
       .applies = [](const Context& x) { return odd_default_centre(x.c); },
       .perturb = [](const Context& x, Convention v) { return move_centres(x.c, v, half_queries(x.c)); },
       .frame = [](const Context& x) { return centred_at(x.c, half_queries(x.c)); }},
      {.name = "centre-rounded-up", .kind = DiagnosisKind::convention, .convention = "centre",
       .grid_setting = "center = \"queries-ceil\"",
       .explanation = "XPOS centre ceil(N/2) = {ceil_N} instead of floor(N/2) = {c} (odd N rounded "
                      "up); q and k alike, so logits are unaffected",
       .applies = [](const Context& x) { return odd_default_centre(x.c); },
       .perturb = [](const Context& x, Convention v) {
         return move_centres(x.c, v, static_cast<double>(x.c.centre_by(CentreRule::queries_ceil)));
       },
       .frame = [](const Context& x) { return centred_at(x.c, double(x.c.centre_by(CentreRule::queries_ceil))); }},
      {.name = "centre-at-length", .kind = DiagnosisKind::convention, .convention = "centre",
       .explanation = "XPOS centre at N = {N} from the first query instead of floor(N/2) = {c}; q and k "
                      "alike, so logits are unaffected",
       .applies = [](const Context& x) { return x.c.xpos && !x.c.center; },
       .perturb = [](const Context& x, Convention v) {
         return move_centres(x.c, v, static_cast<double>(x.c.first_query_position() + x.c.seq_len));
       },
       .frame = [](const Context& x) { return centred_at(x.c, double(x.c.first_query_position() + x.c.seq_len)); }},
      {.name = "positions-in-dtype",
       .explanation = "positions rounded to {dtype} before the angles and scales are formed "
                      "(a position tensor in the dtype): beyond 2^{p} = {exact} positions apart "
                      "no longer differ, and p stands for the nearest {dtype} value",
       .applies = [](const Context& x) {
         const double exact = std::ldexp(1.0, traits(x.dtype).precision);
         return x.dtype != DType::fp32 &&
                std::max(std::fabs(double(x.c.first_key_position())), std::fabs(double(x.c.last_position()))) > exact;
       },
       .perturb = [](const Context&, Convention v) { v.positions_in_dtype = true; return v; }},
      // The estimate-driven model (fitted_model.cpp) is tried here, between the
      // specific entries above and the loose ones below.
      {.name = "angles-in-dtype", .kind = DiagnosisKind::precision, .after_model = true,
       .explanation = "angles p*omega formed in {dtype}: the angle error grows like |phi| * 2^-{p} "
                      "(measured rms {per_phi:.2g} |phi| eps at |phi| >= 8), beyond fp32-rounded "
                      "angles",
       .applies = [](const Context& x) { return x.dtype != DType::fp32; },
       .perturb = [](const Context&, Convention v) { v.angle_unit_ratio = 1; return v; }},
      // Tables built for one pairing (cat(t, t), repeat_interleave(t, 2)) under the
      // other's rotation: not a rotation at all, so the fitted model cannot read it;
      // after it, so that every explanation by a rotation comes first.
      {.name = "tables-other-layout", .after_model = true,
       .explanation = "per-feature tables laid out for the {other_layout} layout while the rotation pairs "
                      "features {layout}: the two features of a pair take different angles or XPOS scales",
       .applies = [](const Context& x) { return x.c.rotary() >= 4 && x.has_outputs; },
       .test = test_tables_other_layout},
      // A key cache that holds its keys unrotated, or rotated and then rotates them again.
      {.name = "memory-rotated-wrong", .after_model = true,
       .explanation = "the {M} memory keys rotated other than once while the current rows are rotated once "
                      "(a key cache holding its keys unrotated, or rotating keys it holds rotated)",
       .applies = [](const Context& x) {
         return x.c.mem_len > 0 && x.has_outputs && !x.c.stream && !x.c.packed && !x.c.positions;
       },
       .test = test_memory_rotations},
      {.name = "sin-cos-swapped", .after_model = true,
       .explanation = "cos and sin swapped (x sin phi + r(x) cos phi, the tables passed in each other's place): a "
                      "rotation by pi/2 - phi",
       .applies = [](const Context& x) { return x.has_outputs; },
       .test = test_sin_cos_swapped},
      // Tried first for a candidate that declares itself stateful, last for the others
      // (a fresh instance costs a run of the candidate).
      {.name = "history-dependence", .after_model = true,
       .explanation = "results depend on call history (a stale cache): a fresh instance of the "
                      "candidate gives different outputs for the same case",
       .applies = [](const Context& x) { return x.can_rerun; },
       .test = test_history},
  };
  return table;
}

std::string explain(const Hypothesis& h, const Context& x) {
  const Case& c = x.c;
  const Estimates& e = x.estimates;
  try {
    return fmt::format(
        fmt::runtime(h.explanation), fmt::arg("M", c.mem_len), fmt::arg("N", c.seq_len),
        fmt::arg("MN", c.key_rows()), fmt::arg("R", c.rotary()), fmt::arg("last", c.head_dim - 1),
        fmt::arg("c", c.centre()), fmt::arg("alpha", c.interpolation),
        fmt::arg("f", c.base_rescale), fmt::arg("theta", c.base),
        fmt::arg("theta_f", c.base * c.base_rescale), fmt::arg("theta_spec", rescaled_base(c)),
        fmt::arg("key_range_centre", key_range_centre(c)), fmt::arg("cache_shift", cache_shift(c)),
        fmt::arg("key_rows_centre", key_rows_centre(c)),
        fmt::arg("half_N", half_queries(c)),
        fmt::arg("ceil_N", c.centre_by(CentreRule::queries_ceil)),
        fmt::arg("first_last", c.head_dim - c.rotary()), fmt::arg("R_1", c.rotary() - 1),
        fmt::arg("passthrough_scale",
                 e.passthrough_pair ? fmt::format("every one with pair {}'s scale", *e.passthrough_pair)
                                    : std::string("feature R+i with pair i mod R/2's scale")),
        fmt::arg("layout", layout_pairs(c.layout)), fmt::arg("other_layout", layout_pairs(other_layout(c.layout))),
        fmt::arg("dtype", dtype_name(x.dtype)), fmt::arg("p", traits(x.dtype).precision),
        fmt::arg("exact", std::ldexp(1.0, traits(x.dtype).precision)),
        fmt::arg("per_phi", angle_error_per_phi_eps(x)), fmt::arg("B", c.scale_base),
        fmt::arg("k", c.stream ? c.stream->step_rows : c.seq_len),
        fmt::arg("k_1", (c.stream ? c.stream->step_rows : c.seq_len) - 1),
        fmt::arg("first_call_keys", c.stream ? c.stream_call(0).key_rows() : c.key_rows()));
  } catch (const fmt::format_error& err) {
    // A template naming an argument that does not exist: say so rather than crash a sweep.
    return fmt::format("{} (explanation template error: {})", h.explanation, err.what());
  }
}

}  // namespace xposcheck::diagnosis
