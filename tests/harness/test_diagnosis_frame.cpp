// A convention's frame between two positions (harness/src/diagnosis/convention_frame.cpp):
// SPEC's outputs moved by a centre offset are SPEC's outputs at the moved centre.
#include <cmath>

#include <catch2/catch.hpp>

#include "xposcheck/harness/diagnosis.hpp"
#include "xposcheck/reference/golden.hpp"
#include "xposcheck/reference/inputs.hpp"

using namespace xposcheck;

namespace {

Case xpos_case(Layout layout) {
  Case c;
  c.head_dim = 32;
  c.rotary_dim = 24;  // pass-through features stay as they are
  c.seq_len = 9;
  c.mem_len = 5;
  c.layout = layout;
  c.xpos = true;
  c.scale_base = 8;  // a short base: every step of the centre moves the scales a lot
  return c;
}

// Largest |a - b| / |b| over the elements.
double worst_relative(const Tensor& a, const Tensor& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (b.data[i] != 0) worst = std::max(worst, std::fabs(a.data[i] - b.data[i]) / std::fabs(b.data[i]));
  return worst;
}

}  // namespace

TEST_CASE("a centre moved by a whole offset is the golden output at that centre") {
  for (const Layout layout : {Layout::half, Layout::interleaved}) {
    Case at3 = xpos_case(layout), at5 = at3;
    at3.center = 3;
    at5.center = 5;
    const Inputs in = generate_inputs(at3, 7, DType::fp32);
    Golden moved = golden_fast(at3, in.q, in.k);
    const Golden target = golden_fast(at5, in.q, in.k);
    const CentreOffsetMove move(ConventionFrame{at3, 2.0});
    move.apply(true, moved.q_out.data.data(), 9);
    move.apply(false, moved.k_out.data.data(), 14);
    INFO(layout_name(layout));
    CHECK(worst_relative(moved.q_out, target.q_out) < 1e-14);
    CHECK(worst_relative(moved.k_out, target.k_out) < 1e-14);
    // And far from the unmoved outputs: the offset changes every rotated pair.
    CHECK(worst_relative(golden_fast(at3, in.q, in.k).q_out, target.q_out) > 0.1);
  }
}

TEST_CASE("no offset, or no XPOS, leaves the outputs alone") {
  Case c = xpos_case(Layout::half);
  const Inputs in = generate_inputs(c, 7, DType::fp32);
  Golden g = golden_fast(c, in.q, in.k);
  const Tensor before = g.q_out;
  CentreOffsetMove(ConventionFrame{c, 0.0}).apply(true, g.q_out.data.data(), 9);
  CHECK(g.q_out.data == before.data);
  c.xpos = false;
  CentreOffsetMove(ConventionFrame{c, 0.5}).apply(true, g.q_out.data.data(), 9);
  CHECK(g.q_out.data == before.data);
}
