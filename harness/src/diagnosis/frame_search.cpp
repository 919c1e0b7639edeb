// Hypotheses that no single rotation explains, so that the fitted model cannot read
// their frame off the decomposition: each is scored in the frames code is written in
// instead (SPEC's positions, and positions counted from the first cached key), each
// with the XPOS centre of every centre rule there, and named only where the same
// frame without the bug does not fit.
//
// - Tables laid out for one pairing, rotation done with the other: code that builds
//   cos, sin or the XPOS scale as cat(t, t) (half pairs) and rotates neighbouring
//   pairs, or repeat_interleave(t, 2) (neighbouring pairs) under rotate_half: a pair's
//   two features take different angles or scales.
// - Memory keys rotated other than once: a cache that holds keys unrotated and never
//   rotates them, or holds them rotated and rotates them again with the current rows.
// - cos and sin swapped (apply(q, k, sin, cos) for apply(q, k, cos, sin)): x cos + r(x)
//   sin becomes x sin + r(x) cos, a rotation by pi/2 - phi, whose angle error against
//   SPEC wraps too fast for the decomposition to read a frame.
#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <numbers>
#include <string>
#include <vector>

#include "diagnosis/hypotheses.hpp"

namespace xposcheck::diagnosis {
namespace {

struct Frame {
  double shift, centre;
};

// SPEC's frame, then the cache frame; in each its own centre first, then every rule's.
std::vector<Frame> frames_of(const Case& c) {
  std::vector<Frame> frames;
  const auto add = [&](double shift, double centre) {
    const bool seen = std::any_of(frames.begin(), frames.end(),
                                  [&](const Frame& f) { return f.shift == shift && f.centre == centre; });
    if (!seen) frames.push_back({shift, centre});
  };
  std::vector<double> shifts{0};
  if (c.first_key_position() != 0 && !c.positions && !c.packed)
    shifts.push_back(static_cast<double>(-c.first_key_position()));
  for (double shift : shifts) {
    const Case frame = shifted_frame(c, shift);
    add(shift, static_cast<double>(c.centre()) + shift);
    if (!c.xpos) continue;
    for (CentreRule r : {CentreRule::queries_floor, CentreRule::queries_ceil, CentreRule::keys_floor,
                         CentreRule::keys_ceil})
      add(shift, static_cast<double>(frame.centre_by(r)));
  }
  return frames;
}

std::string frame_text(const Case& c, const Frame& f) {
  std::string out = f.shift == 0 ? "in SPEC's positions"
                                 : fmt::format("with q and k positions counted from the first cached key "
                                               "(shifted alike by {:+g})",
                                               f.shift);
  if (c.xpos) out += fmt::format(", XPOS centre {:g}", f.centre);
  return out;
}

Convention in_frame(const Case& c, const Frame& f) {
  Convention conv = spec_convention(c);
  conv.query_shift = conv.key_shift = f.shift;
  conv.query_centre = conv.key_centre = f.centre;
  return conv;
}

// One way of getting it wrong: what it changes in a convention, and its words.
struct Variant {
  std::function<void(Convention&)> apply;
  std::string what;
};

// The first variant and frame that fit where the same frame without the variant does
// not (angles all 0, or a difference within tolerance, is not this bug); else the
// closest misfit.
HypothesisScore first_fit_in_frames(const Evidence& ev, const std::vector<Variant>& variants, std::string& detail) {
  HypothesisScore best;
  const std::vector<Frame> frames = frames_of(ev.c);
  for (const Variant& v : variants) {
    for (const Frame& f : frames) {
      Convention conv = in_frame(ev.c, f);
      v.apply(conv);
      const HypothesisScore s = score_convention(ev, conv);
      if (s.fits && !score_convention(ev, in_frame(ev.c, f)).fits) {
        detail = fmt::format("{}, {}: every sampled element within tolerance (max error/allowed {:.3g})", v.what,
                             frame_text(ev.c, f), s.max_ratio);
        return s;
      }
      if (best.compared == 0 || s.max_ratio < best.max_ratio) best = s;
    }
  }
  return best;
}

}  // namespace

HypothesisScore test_tables_other_layout(const Evidence& ev, std::string& detail) {
  const Case& c = ev.c;
  const std::string other = layout_pairs(other_layout(c.layout));
  const auto mixed = [&](bool angles, bool scale, const char* what) {
    return Variant{[=](Convention& v) {
                     v.angle_tables_other_layout = angles;
                     v.scale_tables_other_layout = scale;
                   },
                   fmt::format("the {} laid out for the {} layout", what, other)};
  };
  if (!c.xpos) return first_fit_in_frames(ev, {mixed(true, false, "cos and sin tables")}, detail);
  return first_fit_in_frames(ev,
                             {mixed(true, true, "cos, sin and XPOS scale tables"),
                              mixed(true, false, "cos and sin tables (the XPOS scale paired right)"),
                              mixed(false, true, "XPOS scale table (cos and sin paired right)")},
                             detail);
}

HypothesisScore test_memory_rotations(const Evidence& ev, std::string& detail) {
  const auto rotated = [&](double times, const char* what) {
    return Variant{[=](Convention& v) { v.memory_rotations = times; },
                   fmt::format("the {} memory keys {}, the current rows rotated once", ev.c.mem_len, what)};
  };
  return first_fit_in_frames(ev,
                             {rotated(0, "left as they came, unrotated and unscaled"),
                              rotated(2, "rotated and scaled a second time (angle 2 phi, scale sigma^2)")},
                             detail);
}

HypothesisScore test_sin_cos_swapped(const Evidence& ev, std::string& detail) {
  return first_fit_in_frames(ev,
                             {Variant{[](Convention& v) {
                                        v.rotation = -v.rotation;
                                        v.angle_offset = std::numbers::pi / 2;
                                      },
                                      "cos and sin swapped (a rotation by pi/2 - phi)"}},
                             detail);
}

}  // namespace xposcheck::diagnosis
