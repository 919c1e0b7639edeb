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
#include <fmt/format.h>

#include <algorithm>

#include "diagnosis/hypotheses.hpp"

namespace xposcheck::diagnosis {
namespace {

struct Mixing {
  bool angles, scale;
  const char* what;
};

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
    Case frame = c;
    frame.first_position = c.first_key_position() + static_cast<long>(shift);
    frame.center.reset();
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

bool fits_unmixed(const Evidence& ev, Convention conv) {
  conv.angle_tables_other_layout = conv.scale_tables_other_layout = false;
  return score_convention(ev, conv).fits;
}

Convention in_frame(const Case& c, const Frame& f) {
  Convention conv = spec_convention(c);
  conv.query_shift = conv.key_shift = f.shift;
  conv.query_centre = conv.key_centre = f.centre;
  return conv;
}

}  // namespace

HypothesisScore test_tables_other_layout(const Evidence& ev, std::string& detail) {
  const Case& c = ev.c;
  std::vector<Mixing> mixings{{true, true, c.xpos ? "cos, sin and XPOS scale tables" : "cos and sin tables"}};
  if (c.xpos) {
    mixings.push_back({true, false, "cos and sin tables (the XPOS scale paired right)"});
    mixings.push_back({false, true, "XPOS scale table (cos and sin paired right)"});
  }
  const std::string other = layout_pairs(other_layout(c.layout));
  HypothesisScore best;
  for (const Mixing& m : mixings) {
    for (const Frame& f : frames_of(c)) {
      Convention conv = in_frame(c, f);
      conv.angle_tables_other_layout = m.angles;
      conv.scale_tables_other_layout = m.scale && c.xpos;
      const HypothesisScore s = score_convention(ev, conv);
      // Where the frame fits without the mixing (angles all 0, a scale within
      // tolerance), the layout of the tables is not what is wrong.
      if (s.fits && !fits_unmixed(ev, conv)) {
        detail = fmt::format("the {} laid out for the {} layout, {}: every sampled element within tolerance "
                             "(max error/allowed {:.3g})",
                             m.what, other, frame_text(c, f), s.max_ratio);
        return s;
      }
      if (best.compared == 0 || s.max_ratio < best.max_ratio) best = s;
    }
  }
  return best;
}

HypothesisScore test_memory_rotations(const Evidence& ev, std::string& detail) {
  const Case& c = ev.c;
  const struct {
    double rotations;
    const char* what;
  } ways[] = {{0, "left as they came, unrotated and unscaled"},
              {2, "rotated and scaled a second time (angle 2 phi, scale sigma^2)"}};
  HypothesisScore best;
  for (const auto& way : ways) {
    for (const Frame& f : frames_of(c)) {
      Convention conv = in_frame(c, f);
      conv.memory_rotations = way.rotations;
      const HypothesisScore s = score_convention(ev, conv);
      conv.memory_rotations = 1;
      if (s.fits && !score_convention(ev, conv).fits) {
        detail = fmt::format("the {} memory keys {}, the current rows rotated once, {}: every sampled element "
                             "within tolerance (max error/allowed {:.3g})",
                             c.mem_len, way.what, frame_text(c, f), s.max_ratio);
        return s;
      }
      if (best.compared == 0 || s.max_ratio < best.max_ratio) best = s;
    }
  }
  return best;
}

}  // namespace xposcheck::diagnosis
