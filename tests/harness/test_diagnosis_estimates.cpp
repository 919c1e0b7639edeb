// The estimate-driven diagnosis: frame conventions (positions counted from the first
// cached key, centres chosen in that frame) named and accepted only when they fit the
// outputs, combinations of a convention with a bug, and bugs in shapes no built-in
// plants, named from the numbers the decomposition reads off.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "harness/twisted_candidate.hpp"
#include "xposcheck/harness/diagnosis.hpp"
#include "xposcheck/harness/sweep.hpp"

using namespace xposcheck;
using Catch::Matchers::Contains;
using testing::Twist;
using testing::TwistedCandidate;

namespace {

constexpr DType kDtypes[] = {DType::fp32, DType::bf16, DType::fp16};

GridCase make_case(long d, long n, long m, void (*tweak)(Case&) = nullptr) {
  Case c;
  c.head_dim = d;
  c.seq_len = n;
  c.mem_len = m;
  if (tweak) tweak(c);
  return {case_id(c) + "-s1", c, 1};
}

Record evaluate(Candidate& candidate, const GridCase& gc, DType t,
                std::vector<std::string> accept = {}) {
  DiagnosisOptions d;
  d.accept_conventions = std::move(accept);
  return evaluate_one(candidate, gc, t, resolve_tolerance(t, {}, {}), 256, d);
}

// Code in the cache frame: keys at 0..M+N-1, queries at M..M+N-1, with the XPOS centre
// at `centre` of that frame. Twists shift the case's own positions: on a case already
// in the cache frame, the same code needs no shift.
Twist cache_frame(const Case& c, double centre) {
  const double m = c.first_position == 0 ? 0.0 : static_cast<double>(c.mem_len);
  return Twist{.query_shift = m, .key_shift = m, .query_centre = centre, .key_centre = centre};
}

// A failing record named as a bug, with this verdict.
void check_bug(const Record& r, const std::string& verdict) {
  CHECK(r.outcome == Outcome::tolerance);
  REQUIRE(r.diagnosis);
  CHECK(r.diagnosis->verdict == verdict);
  CHECK(r.diagnosis->kind == DiagnosisKind::bug);
}

// A twisted candidate's record on gc in dtype t, diagnosed `verdict`, its explanation matching.
template <class Matcher = Catch::Matchers::StdString::ContainsMatcher>
void check_verdict(const GridCase& gc, const Twist& twist, DType t, const std::string& verdict,
                   const Matcher& explanation = Contains("")) {
  TwistedCandidate candidate(twist);
  const Record rec = evaluate(candidate, gc, t);
  REQUIRE(rec.diagnosis);
  CHECK(rec.diagnosis->verdict == verdict);
  CHECK_THAT(rec.diagnosis->explanation, explanation);
}

template <class Matcher>
void check_fp32_verdict(const GridCase& gc, const Twist& twist, const std::string& verdict,
                        const Matcher& explanation) {
  check_verdict(gc, twist, DType::fp32, verdict, explanation);
}

}  // namespace

TEST_CASE("code counting positions from the first cached key is the origin convention") {
  const GridCase gc = make_case(32, 40, 24);
  // The centre moved along with the positions: floor(N/2) from the first query.
  TwistedCandidate candidate(cache_frame(gc.params, 24 + 20));
  for (DType t : kDtypes) {
    INFO(dtype_name(t));
    const Record plain = evaluate(candidate, gc, t);
    REQUIRE(plain.diagnosis);
    CHECK(plain.outcome == Outcome::tolerance);
    CHECK(plain.diagnosis->verdict == "origin");
    CHECK(plain.diagnosis->kind == DiagnosisKind::convention);
    CHECK(plain.diagnosis->convention == "origin");
    CHECK(plain.diagnosis->grid_setting == "first_position = 0");
    CHECK_THAT(plain.diagnosis->explanation, Contains("shifted alike by +24 (= M"));
    CHECK_THAT(plain.message, Contains("--accept-convention origin"));
    CHECK(evaluate(candidate, gc, t, {"origin"}).outcome == Outcome::pass);
    CHECK(evaluate(candidate, gc, t, {"centre"}).outcome == Outcome::tolerance);
    // Golden outputs computed in its frame: the strict elementwise check passes.
    GridCase framed = gc;
    framed.params.first_position = 0;
    TwistedCandidate same_code(cache_frame(framed.params, 24 + 20));
    const Record strict = evaluate(same_code, framed, t);
    CHECK(strict.outcome == Outcome::pass);
    CHECK_FALSE(strict.diagnosis);
  }
}

TEST_CASE("cache-frame centre rules are origin plus centre, and pass in their own frame") {
  const GridCase gc = make_case(32, 40, 25);
  const struct {
    CentreRule rule;
    double centre;  // in the cache frame: keys at 0..64
  } rules[] = {{CentreRule::keys_floor, 32}, {CentreRule::keys_ceil, 33}};
  for (const auto& r : rules) {
    TwistedCandidate candidate(cache_frame(gc.params, r.centre));
    for (DType t : kDtypes) {
      INFO(centre_rule_name(r.rule) << " " << dtype_name(t));
      const Record plain = evaluate(candidate, gc, t);
      REQUIRE(plain.diagnosis);
      CHECK(plain.diagnosis->verdict == "origin + shared-centre");
      CHECK(plain.diagnosis->kind == DiagnosisKind::convention);
      CHECK(plain.diagnosis->convention == "origin,centre");
      CHECK(plain.diagnosis->grid_setting ==
            fmt::format("first_position = 0, center = \"{}\"", centre_rule_name(r.rule)));
      CHECK(evaluate(candidate, gc, t, {"origin"}).outcome == Outcome::tolerance);
      CHECK(evaluate(candidate, gc, t, {"origin", "centre"}).outcome == Outcome::pass);
      GridCase framed = gc;
      framed.params.first_position = 0;
      framed.params.centre_rule = r.rule;
      TwistedCandidate same_code(cache_frame(framed.params, r.centre));
      CHECK(evaluate(same_code, framed, t).outcome == Outcome::pass);
    }
  }
}

TEST_CASE("a convention and a bug at once: cache frame with query and key centres apart") {
  // rotary-embedding-torch's cached-key path centres queries on their own length and
  // keys on theirs: floor(N/2) = 20 and floor((M+N)/2) = 32 in the cache frame.
  const GridCase gc = make_case(32, 40, 24);
  Twist tw = cache_frame(gc.params, 0);
  tw.query_centre = 20;
  tw.key_centre = 32;
  TwistedCandidate candidate(tw);
  for (DType t : kDtypes) {
    INFO(dtype_name(t));
    const Record r = evaluate(candidate, gc, t, {"origin", "centre"});
    REQUIRE(r.diagnosis);
    CHECK(r.outcome == Outcome::tolerance);
    CHECK_FALSE(r.diagnosis->accepted);
    CHECK(r.diagnosis->kind == DiagnosisKind::bug);
    CHECK(r.diagnosis->verdict == "origin + centres-differ");
    CHECK_THAT(r.diagnosis->explanation, Contains("queries centred at 20 and keys at 32"));
  }
}

TEST_CASE("one query row's centre is read at the keys' when the logits pass") {
  // torchscale at M = 4000 with one query: its centre is read off a single bf16 row
  // (2000.5 against the keys' 2001), and both fit; the logits pass, so q and k share
  // the keys' centre: a convention. A real difference of centres fails the logits
  // and stays a bug (the cached-key test above).
  const GridCase gc = make_case(128, 1, 4000, [](Case& c) {
    c.layout = Layout::interleaved;
    c.scale_base = 4096;
  });
  TwistedCandidate candidate(cache_frame(gc.params, 2001));
  const Record r = evaluate(candidate, gc, DType::bf16, {"origin", "centre"});
  REQUIRE(r.diagnosis);
  CHECK(r.diagnosis->verdict == "origin + shared-centre");
  CHECK(r.outcome == Outcome::pass);
}

TEST_CASE("fp32 angles in the cache frame are the origin convention, logits included") {
  // vLLM's cos/sin cache: angles p * omega_j in fp32 at the cache frame's positions
  // 0..M+N-1. Its queries sit at 8000.. where SPEC's are at 0..: the same logits carry
  // the rounding of angles 8000 positions further out, which their allowance must take.
  const GridCase gc = make_case(128, 64, 8000, [](Case& c) { c.xpos = false; });
  TwistedCandidate candidate(Twist{.query_shift = 8000, .key_shift = 8000, .angles_in_fp32 = true});
  const Record plain = evaluate(candidate, gc, DType::fp32);
  REQUIRE(plain.diagnosis);
  CHECK(plain.diagnosis->verdict == "origin");
  CHECK(plain.diagnosis->kind == DiagnosisKind::convention);
  CHECK(plain.tensors.at(2).over_tolerance == 0);
  const Record accepted = evaluate(candidate, gc, DType::fp32, {"origin"});
  CHECK(accepted.outcome == Outcome::pass);
}

TEST_CASE("a few query rows far from the centre do not make a convention a bug") {
  // torchscale's centre in the cache frame, ceil((M+N)/2) = 504, seven queries at
  // 1000..1006 in bf16: their log-scale slopes say little, and the outputs fit SPEC's
  // growth with the centres moved: a convention, not an XPOS exponent bug.
  const GridCase gc = make_case(64, 7, 1000, [](Case& c) { c.layout = Layout::interleaved; });
  TwistedCandidate candidate(cache_frame(gc.params, 504));
  for (DType t : kDtypes) {
    INFO(dtype_name(t));
    const Record r = evaluate(candidate, gc, t, {"origin", "centre"});
    REQUIRE(r.diagnosis);
    CHECK(r.diagnosis->verdict == "origin + shared-centre");
    CHECK(r.diagnosis->kind == DiagnosisKind::convention);
    CHECK(r.outcome == Outcome::pass);
  }
}

TEST_CASE("positions made in the dtype in the cache frame: the rounding named with the frame") {
  // rotary-embedding-torch's cached-key path makes its positions in the tensors' dtype
  // (torch.arange(k_len, dtype=q.dtype)): keys at 0..M+N-1 rounded, so the rounding
  // is that of the cache frame's positions, not of SPEC's.
  for (const auto& [t, m] : {std::pair{DType::bf16, 1000L}, std::pair{DType::fp16, 3000L}}) {
    INFO(dtype_name(t));
    const GridCase gc = make_case(32, 64, m);
    Twist tw = cache_frame(gc.params, 0);
    tw.positions_in = t;
    tw.query_centre = 32;
    tw.key_centre = static_cast<double>((m + 64) / 2);
    TwistedCandidate with_xpos(tw);
    const Record r = evaluate(with_xpos, gc, t, {"origin", "centre"});
    REQUIRE(r.diagnosis);
    CHECK(r.outcome == Outcome::tolerance);
    CHECK(r.diagnosis->kind == DiagnosisKind::bug);
    CHECK(r.diagnosis->verdict == "positions-in-dtype + origin + centres-differ");
    CHECK_THAT(r.diagnosis->explanation, Contains(fmt::format("positions rounded to {}", dtype_name(t))) &&
                                             Contains(fmt::format("shifted alike by +{} (= M", m)));

    const GridCase plain = make_case(32, 64, m, [](Case& c) { c.xpos = false; });
    TwistedCandidate rope(Twist{.query_shift = double(m), .key_shift = double(m), .positions_in = t});
    const Record p = evaluate(rope, plain, t, {"origin", "centre"});
    REQUIRE(p.diagnosis);
    CHECK(p.outcome == Outcome::tolerance);
    CHECK_FALSE(p.diagnosis->accepted);
    CHECK(p.diagnosis->verdict == "positions-in-dtype + origin");
  }
}

TEST_CASE("query and key centres 19 positions apart are never accepted, and the logits see them") {
  const GridCase gc = make_case(64, 256, 256);
  TwistedCandidate candidate(Twist{.key_centre = gc.params.centre() + 19});
  for (DType t : kDtypes) {
    INFO(dtype_name(t));
    const Record r = evaluate(candidate, gc, t, {"origin", "centre"});
    CHECK(r.outcome == Outcome::tolerance);
    REQUIRE(r.diagnosis);
    CHECK_FALSE(r.diagnosis->accepted);
    CHECK(r.diagnosis->kind == DiagnosisKind::bug);
    const TensorStats& logits = r.tensors.at(2);
    INFO("bias " << logits.bias.value_or(0) << " allowed " << logits.bias_allowed.value_or(0));
    CHECK(logits.bias_fails());
  }
}

TEST_CASE("a systematic 1% logit error fails the logits in every dtype") {
  // Each output 0.5% large: every logit 1% large, within the elementwise allowance of
  // bf16 (8 ulps of 2^-8) but not a correct implementation.
  const GridCase gc = make_case(64, 256, 256);
  TwistedCandidate candidate(Twist{.output_factor = 1.005});
  for (DType t : kDtypes) {
    INFO(dtype_name(t));
    const Record r = evaluate(candidate, gc, t);
    CHECK(r.outcome == Outcome::tolerance);
    const TensorStats& logits = r.tensors.at(2);
    REQUIRE(logits.bias);
    CHECK(*logits.bias == Approx(0.010025).margin(0.002));
    CHECK(logits.bias_fails());
    if (t == DType::bf16) {
      CHECK(r.tensors.at(0).over_tolerance == 0);
      CHECK_THAT(r.message, Contains("logits: systematically off by +1"));
    }
  }
}

TEST_CASE("bugs in shapes no built-in plants are named from the estimates") {
  SECTION("an NTK exponent R/(R+2)") {
    const GridCase gc = make_case(32, 40, 20, [](Case& c) { c.base_rescale = 4; });
    const double r = 32;
    check_fp32_verdict(gc, Twist{.base = 10000 * std::pow(4.0, r / (r + 2))}, "ntk-exponent",
                       Contains("NTK exponent R/(R+2), R = 32"));
  }
  SECTION("an NTK exponent over the head dim, D/(D-2), on a partial rotary") {
    const GridCase gc = make_case(64, 40, 20, [](Case& c) {
      c.base_rescale = 4;
      c.rotary_dim = 32;
    });
    TwistedCandidate candidate(Twist{.base = 10000 * std::pow(4.0, 64.0 / 62.0)});
    for (DType t : kDtypes) {
      INFO(dtype_name(t));
      const Record rec = evaluate(candidate, gc, t);
      REQUIRE(rec.diagnosis);
      CHECK(rec.diagnosis->verdict == "ntk-exponent");
      CHECK_THAT(rec.diagnosis->explanation, Contains("NTK exponent D/(D-2), R = 32, D = 64"));
    }
  }
  SECTION("frequencies rounded to bf16 before the multiply") {
    const GridCase gc = make_case(32, 200, 56);
    check_fp32_verdict(gc, Twist{.frequencies_in = DType::bf16}, "frequencies-rounded",
                       Contains("rounded to bf16") && Contains("2^-8"));
  }
  SECTION("the XPOS scale on interpolated positions p / alpha") {
    const GridCase gc = make_case(32, 64, 32, [](Case& c) { c.interpolation = 2; });
    check_fp32_verdict(gc, Twist{.scale_position_factor = 0.5}, "xpos-interpolated",
                       Contains("interpolated positions p / alpha (alpha = 2)"));
  }
  SECTION("one pair's XPOS scale on every pass-through feature") {
    const GridCase gc = make_case(32, 40, 20, [](Case& c) { c.rotary_dim = 16; });
    check_fp32_verdict(gc, Twist{.passthrough_pair = 0}, "scale-on-passthrough", Contains("pair 0's scale"));
  }
  SECTION("frequencies of another base, in every dtype and in the cache frame") {
    // A hard-coded 500000 where the case asks for 10000: read off the decomposition's
    // estimate, rounded, or a known base near it where a 16-bit dtype blurs it.
    const GridCase gc = make_case(32, 40, 24);
    for (DType t : kDtypes) {
      INFO(dtype_name(t));
      check_verdict(gc, Twist{.base = 500000}, t, "base-differs",
                    Contains("base theta' = 500000 instead of the case's theta = 10000"));
      Twist moved = cache_frame(gc.params, 24 + 20);
      moved.base = 500000;
      TwistedCandidate cached(moved);
      const Record framed = evaluate(cached, gc, t, {"origin", "centre"});
      CHECK(framed.outcome == Outcome::tolerance);
      REQUIRE(framed.diagnosis);
      CHECK(framed.diagnosis->verdict == "base-differs + origin");
    }
  }
  SECTION("the XPOS scale applied to the queries alone") {
    const GridCase gc = make_case(32, 64, 32);
    check_fp32_verdict(gc, Twist{.keys_unscaled = true}, "xpos-missing-on-keys",
                       Contains("applied to the queries only"));
  }
  SECTION("the keys scaled by sigma, the scale not inverted for them") {
    const GridCase gc = make_case(32, 64, 32);
    check_fp32_verdict(gc, Twist{.keys_not_inverted = true}, "key-scale-not-inverted",
                       Contains("instead of by 1/sigma"));
  }
  SECTION("XPOS zeta over the pair index j where 2j belongs, in SPEC's frame and the cache frame") {
    const GridCase gc = make_case(32, 64, 32);
    Twist moved = cache_frame(gc.params, 32 + 32);
    moved.zeta_step = 1;
    for (DType t : kDtypes) {
      INFO(dtype_name(t));
      check_verdict(gc, Twist{.zeta_step = 1}, t, "zeta-pair-index", Contains("zeta_j = (j + 0.4 R) / (1.4 R)"));
      TwistedCandidate cached(moved);
      check_bug(evaluate(cached, gc, t, {"origin", "centre"}), "zeta-pair-index + origin");
    }
  }
  SECTION("XPOS zeta with another constant than 0.4, in SPEC's frame and the cache frame") {
    // Keys a few hundred positions from the centre, so that bf16 and fp16 see the change.
    const GridCase gc = make_case(32, 64, 384);
    const auto check_constant = [&](double g, DType t) {
      INFO(dtype_name(t) << ", g = " << g);
      Twist moved = cache_frame(gc.params, 384 + 32);
      moved.zeta_constant = g;
      check_verdict(gc, Twist{.zeta_constant = g}, t, "zeta-constant",
                    Contains(fmt::format("the constant {:g} where SPEC has 0.4", g)));
      TwistedCandidate cached(moved);
      check_bug(evaluate(cached, gc, t, {"origin", "centre"}), "zeta-constant + origin");
    };
    for (DType t : kDtypes) check_constant(0.5, t);
    check_constant(0.25, DType::fp32);
  }
  SECTION("an XPOS exponent grown by a factor no zeta explains stays xpos-exponent") {
    const GridCase gc = make_case(32, 64, 384);
    for (DType t : kDtypes) {
      INFO(dtype_name(t));
      check_verdict(gc, Twist{.scale_position_factor = 0.6}, t, "xpos-exponent");
    }
  }
  SECTION("partial rotary applied to the last R features") {
    const GridCase gc = make_case(32, 40, 20, [](Case& c) { c.rotary_dim = 16; });
    TwistedCandidate candidate(Twist{.rotate_last_features = true});
    const Record rec = evaluate(candidate, gc, DType::bf16);
    REQUIRE(rec.diagnosis);
    CHECK(rec.diagnosis->verdict == "rotary-last-features");
    CHECK_THAT(rec.diagnosis->explanation, Contains("16..31 rotated instead of the first R"));
  }
}

TEST_CASE("where an accepted convention's own values overflow the dtype, that is its envelope") {
  // torchscale's centre in the cache frame, long memory, fp16: the candidate's key
  // scales overflow where SPEC's (centred on the queries) do not; SPEC's own memory
  // keys leave fp16's normal range (its envelope ends at -3456), the candidate's
  // infinities lie in the part fp16 holds.
  const GridCase gc = make_case(32, 1023, 8192);
  TwistedCandidate candidate(cache_frame(gc.params, (8192 + 1023 + 1) / 2));
  const Record plain = evaluate(candidate, gc, DType::fp16);
  CHECK(plain.outcome == Outcome::out_of_range);
  REQUIRE(plain.range);
  CHECK(plain.range->in_range_outcome == "NONFINITE");
  REQUIRE(plain.diagnosis);
  CHECK(plain.diagnosis->kind == DiagnosisKind::convention);
  CHECK(plain.diagnosis->convention == "origin,centre");
  // Accepted, the case is judged again in the convention's frame, every element: its
  // own envelope (queries overflow past 8575) is where the range ends, the rest passes.
  const Record accepted = evaluate(candidate, gc, DType::fp16, {"origin", "centre"});
  CHECK(accepted.outcome == Outcome::out_of_range);
  REQUIRE(accepted.range);
  CHECK(accepted.range->in_range_outcome == "PASS");
  CHECK(accepted.range->tensor == "q_out");
  CHECK(accepted.range->first_position == 8575);
  REQUIRE(accepted.diagnosis);
  CHECK(accepted.diagnosis->accepted);
  CHECK_THAT(accepted.message, Contains("passes in the frame of the accepted origin,centre convention "
                                        "(first_position = 0, center = \"keys-ceil\"), every element judged there"));
  CHECK_THAT(accepted.message, Contains("in SPEC's frame: 38906 golden values leave the fp16 normal range"));

  // Not judged in the frame, a sample's fit accepts nothing: the record keeps failing.
  Record sampled = plain;
  Diagnosis d = *sampled.diagnosis;
  sampled.diagnosis.reset();
  DiagnosisOptions accept;
  accept.accept_conventions = {"origin", "centre"};
  attach_diagnosis(sampled, d, accept);
  CHECK(sampled.outcome == Outcome::out_of_range);
  REQUIRE(sampled.range);
  CHECK(sampled.range->in_range_outcome == "NONFINITE");
  CHECK_FALSE(sampled.diagnosis->accepted);
  CHECK_THAT(sampled.message, Contains("the accepted origin,centre convention is judged again in its own frame, "
                                       "which this case cannot be (not judged there)"));
}

TEST_CASE("pairs a candidate holds below the dtype's normal range do not blur its convention") {
  // Keys centred on the whole key range, 16 positions of memory per scale base: far
  // keys' fp16 scales leave the normal range in the candidate's own frame, where a pair
  // of a few subnormal ulps says nothing of its angle. Read from normal pairs alone the
  // convention is named, and accepted it passes in its own frame.
  const GridCase gc = make_case(128, 7680, 8192, [](Case& c) { c.layout = Layout::interleaved; });
  TwistedCandidate candidate(cache_frame(gc.params, (8192 + 7680) / 2));
  const Record plain = evaluate(candidate, gc, DType::fp16);
  REQUIRE(plain.diagnosis);
  INFO(plain.diagnosis->evidence);
  CHECK(plain.diagnosis->verdict == "origin + shared-centre");
  CHECK(plain.diagnosis->kind == DiagnosisKind::convention);
  const Record accepted = evaluate(candidate, gc, DType::fp16, {"origin", "centre"});
  INFO(accepted.message);
  CHECK_FALSE(fails_gate(accepted));
  REQUIRE(accepted.diagnosis);
  CHECK(accepted.diagnosis->accepted);
}

TEST_CASE("code for the other pairing that also counts from the first cached key is named for both") {
  // The layout is a bug; the frame alone would be a convention. Together, neither
  // hypothesis fits by itself.
  for (DType t : kDtypes) {
    INFO(dtype_name(t));
    const GridCase gc = make_case(32, 40, 24);
    TwistedCandidate candidate(Twist{.query_shift = 24, .key_shift = 24, .query_centre = 24 + 20,
                                     .key_centre = 24 + 20, .other_layout = true});
    const Record rec = evaluate(candidate, gc, t, {"origin", "centre"});
    CHECK(rec.outcome == Outcome::tolerance);
    REQUIRE(rec.diagnosis);
    CHECK(rec.diagnosis->verdict == "wrong-layout + origin");
    CHECK(rec.diagnosis->kind == DiagnosisKind::bug);
    CHECK_THAT(rec.diagnosis->explanation, Contains("shifted alike by +24"));
    // Without the shift it is the layout alone.
    TwistedCandidate unshifted(Twist{.other_layout = true});
    const Record plain = evaluate(unshifted, gc, t);
    REQUIRE(plain.diagnosis);
    CHECK(plain.diagnosis->verdict == "wrong-layout");
  }
}

TEST_CASE("a reversed rotation in the cache frame is named with the frame, never accepted") {
  // The table's reversed-rotation entry holds SPEC's frame; here the angles also count
  // from the first cached key, and in the second candidate the centre is torchscale's.
  const GridCase gc = make_case(32, 40, 24);
  Twist moved = cache_frame(gc.params, 24 + 20);
  moved.reversed = true;
  Twist own_centre = cache_frame(gc.params, 32);  // ceil((M+N)/2) of the cache frame
  own_centre.reversed = true;
  for (DType t : kDtypes) {
    INFO(dtype_name(t));
    TwistedCandidate frame_only(moved), with_centre(own_centre);
    const Record a = evaluate(frame_only, gc, t, {"origin", "centre"});
    check_bug(a, "reversed-rotation + origin");
    CHECK_THAT(a.diagnosis->explanation, Contains("phi -> -phi") && Contains("shifted alike by +24"));
    const Record b = evaluate(with_centre, gc, t, {"origin", "centre"});
    check_bug(b, "reversed-rotation + origin + shared-centre");
    CHECK_THAT(b.diagnosis->explanation, Contains("both centred at 32"));
  }
}

TEST_CASE("keys off by one in the cache frame are one bug beside the origin convention") {
  // Queries at M..M+N-1, keys at 1..M+N: counted from the first cached key, keys one on.
  const GridCase gc = make_case(32, 40, 24);
  Twist off = cache_frame(gc.params, 24 + 20);
  off.key_shift += 1;
  TwistedCandidate candidate(off);
  const Record r = evaluate(candidate, gc, DType::fp32, {"origin", "centre"});
  check_bug(r, "origin + key-position-shift");
  CHECK_THAT(r.diagnosis->explanation,
             Contains("shifted alike by +24 (= M") &&
                 Contains("key positions shifted by +1 beyond the positions counted from the first cached key"));
}

TEST_CASE("cos and sin swapped are named, in SPEC's frame and the cache frame") {
  // apply(q, k, sin, cos) for apply(q, k, cos, sin): a rotation by pi/2 - phi.
  const GridCase gc = make_case(32, 40, 24);
  Twist spec_frame;
  spec_frame.sin_cos_swapped = true;
  Twist cached = cache_frame(gc.params, 32);  // torchscale's centre, ceil((M+N)/2) there
  cached.sin_cos_swapped = true;
  for (DType t : kDtypes) {
    INFO(dtype_name(t));
    TwistedCandidate a(spec_frame), b(cached);
    const Record ra = evaluate(a, gc, t);
    check_bug(ra, "sin-cos-swapped");
    CHECK_THAT(ra.diagnosis->evidence, Contains("pi/2 - phi") && Contains("in SPEC's positions"));
    const Record rb = evaluate(b, gc, t, {"origin", "centre"});
    check_bug(rb, "sin-cos-swapped");
    CHECK_THAT(rb.diagnosis->evidence, Contains("counted from the first cached key"));
    // In a 16-bit dtype the frame's own centre, 12 positions away, fits as well.
    if (t == DType::fp32) CHECK_THAT(rb.diagnosis->evidence, Contains("XPOS centre 32"));
  }
}

TEST_CASE("tables laid out for the other pairing than the rotation's are named, with their frame") {
  // cat(t, t) tables under neighbouring pairs and repeat_interleave tables under half
  // pairs give a pair's two features different angles or scales: no rotation does that.
  for (Layout layout : {Layout::half, Layout::interleaved}) {
    GridCase gc = make_case(32, 40, 24);
    gc.params.layout = layout;
    // A scale alone mixed up differs by a few percent at B = 512 here, which bf16 does
    // not resolve from another XPOS growth: B = 32 makes it plain.
    GridCase steep = gc;
    steep.params.scale_base = 32;
    Twist both{.angle_tables_other_layout = true, .scale_tables_other_layout = true};
    Twist scale_only = cache_frame(gc.params, 32);  // torchscale's centre in the cache frame
    scale_only.scale_tables_other_layout = true;
    for (DType t : kDtypes) {
      INFO(layout_name(layout) << " " << dtype_name(t));
      TwistedCandidate mixed(both), scale_mixed(scale_only);
      const Record a = evaluate(mixed, gc, t, {"origin", "centre"});
      check_bug(a, "tables-other-layout");
      CHECK_THAT(a.diagnosis->evidence, Contains("the cos, sin and XPOS scale tables laid out for the") &&
                                            Contains("in SPEC's positions, XPOS centre 20"));
      const Record b = evaluate(scale_mixed, steep, t, {"origin", "centre"});
      check_bug(b, "tables-other-layout");
      CHECK_THAT(b.diagnosis->evidence, Contains("the XPOS scale table (cos and sin paired right)") &&
                                            Contains("shifted alike by +24), XPOS centre 32"));
    }
  }
}

TEST_CASE("q and k centred alike at N is the centre convention, and passes in its frame") {
  const GridCase gc = make_case(32, 40, 24);
  TwistedCandidate candidate(Twist{.query_centre = 40, .key_centre = 40});
  for (DType t : kDtypes) {
    INFO(dtype_name(t));
    const Record plain = evaluate(candidate, gc, t);
    CHECK(plain.outcome == Outcome::tolerance);
    REQUIRE(plain.diagnosis);
    CHECK(plain.diagnosis->verdict == "centre-at-length");
    CHECK(plain.diagnosis->kind == DiagnosisKind::convention);
    CHECK(evaluate(candidate, gc, t, {"centre"}).outcome == Outcome::pass);
    GridCase framed = gc;
    framed.params.center = 40;
    CHECK(evaluate(candidate, framed, t).outcome == Outcome::pass);
  }
}

TEST_CASE("memory keys left unrotated, or rotated a second time, are named with their frame") {
  const GridCase gc = make_case(32, 40, 24);
  // bf16 does not tell centres 12 positions apart at B = 512: B = 32 makes them plain.
  GridCase steep = gc;
  steep.params.scale_base = 32;
  for (const double times : {0.0, 2.0}) {
    Twist spec_frame{.memory_rotations = times};
    Twist cached = cache_frame(gc.params, 32);  // torchscale's centre in the cache frame
    cached.memory_rotations = times;
    for (DType t : kDtypes) {
      INFO(times << " " << dtype_name(t));
      TwistedCandidate a(spec_frame), b(cached);
      const Record plain = evaluate(a, gc, t, {"origin", "centre"});
      check_bug(plain, "memory-rotated-wrong");
      CHECK_THAT(plain.diagnosis->evidence,
                 Contains(times == 0 ? "the 24 memory keys left as they came" : "the 24 memory keys rotated and scaled a second time") &&
                     Contains("in SPEC's positions, XPOS centre 20"));
      const Record framed = evaluate(b, steep, t, {"origin", "centre"});
      check_bug(framed, "memory-rotated-wrong");
      CHECK_THAT(framed.diagnosis->evidence, Contains("shifted alike by +24), XPOS centre 32"));
    }
  }
}

TEST_CASE("a single query row is read as shifted and centred like the keys, which its outputs confirm") {
  // One query row shows no shift or scale line of its own; torchscale's centre in the
  // cache frame over 8192 memory keys, fp16 (SPEC's far keys leave the normal range).
  const GridCase gc = make_case(128, 1, 8192, [](Case& c) { c.layout = Layout::interleaved; });
  TwistedCandidate candidate(cache_frame(gc.params, (8192 + 1 + 1) / 2));
  const Record plain = evaluate(candidate, gc, DType::fp16);
  REQUIRE(plain.diagnosis);
  INFO(plain.diagnosis->evidence);
  CHECK(plain.diagnosis->verdict == "origin + shared-centre");
  CHECK(plain.diagnosis->grid_setting == "first_position = 0, center = \"keys-ceil\"");
  const Record accepted = evaluate(candidate, gc, DType::fp16, {"origin", "centre"});
  INFO(accepted.message);
  CHECK_FALSE(fails_gate(accepted));
  // Queries centred elsewhere than the keys: not read as alike, still a bug.
  Twist apart = cache_frame(gc.params, (8192 + 1 + 1) / 2);
  apart.query_centre = 8192;
  TwistedCandidate buggy(apart);
  const Record bug = evaluate(buggy, gc, DType::fp16, {"origin", "centre"});
  CHECK(fails_gate(bug));
}

TEST_CASE("positions made as a row index in the dtype plus an offset in the dtype are named") {
  // arange(N, dtype) + M in bf16, keys arange(M + N, dtype): past 256 the query rows'
  // index is rounded before the offset is added and rounded again, which one rounding
  // of each position does not reproduce.
  const GridCase gc = make_case(64, 1023, 100, [](Case& c) { c.xpos = false; });
  TwistedCandidate candidate(Twist{.query_shift = 100, .key_shift = 100, .positions_in = DType::bf16,
                                   .positions_from_first_row = true});
  const Record rec = evaluate(candidate, gc, DType::bf16, {"origin", "centre"});
  CHECK(fails_gate(rec));
  REQUIRE(rec.diagnosis);
  INFO(rec.diagnosis->evidence);
  CHECK(rec.diagnosis->verdict == "positions-in-dtype + origin");
  CHECK(rec.diagnosis->kind == DiagnosisKind::bug);
  CHECK_THAT(rec.diagnosis->explanation, Contains("row index made in the dtype"));
}

TEST_CASE("the XPOS scale applied where the case has none is named, in either frame") {
  // A module with no XPOS switch (torchscale's) run on plain RoPE cases; the case's
  // scale base is what such a module would use (512 in both).
  const GridCase gc = make_case(32, 40, 24, [](Case& c) { c.xpos = false; });
  Twist spec_frame;
  spec_frame.xpos_always = true;
  Twist cached = cache_frame(gc.params, 32);  // torchscale's centre, ceil((M+N)/2) there
  cached.xpos_always = true;
  Twist faster = spec_frame;  // and with its own, faster-growing exponent
  faster.scale_position_factor = 2;
  for (DType t : kDtypes) {
    INFO(dtype_name(t));
    TwistedCandidate a(spec_frame), b(cached), f(faster);
    const Record ra = evaluate(a, gc, t);
    check_bug(ra, "xpos-unasked");
    CHECK_THAT(ra.diagnosis->explanation, Contains("xpos = false"));
    const Record rb = evaluate(b, gc, t, {"origin", "centre"});
    REQUIRE(rb.diagnosis);
    CHECK(rb.diagnosis->verdict == "xpos-unasked + origin + shared-centre");
    CHECK(rb.diagnosis->kind == DiagnosisKind::bug);
    const Record rf = evaluate(f, gc, t);
    REQUIRE(rf.diagnosis);
    CHECK(rf.diagnosis->verdict == "xpos-unasked + xpos-exponent");
    CHECK_THAT(rf.diagnosis->explanation, Contains("XPOS exponents grow 2x (queries)"));
  }
  // The same module on an XPOS case is right (its frame's conventions accepted).
  const GridCase with_xpos = make_case(32, 40, 24);
  TwistedCandidate a(spec_frame), b(cached);
  for (DType t : kDtypes) {
    CHECK(evaluate(a, with_xpos, t).outcome == Outcome::pass);
    CHECK(evaluate(b, with_xpos, t, {"origin", "centre"}).outcome == Outcome::pass);
  }
}

TEST_CASE("code for the other pairing with its own frame and XPOS is named for all of them") {
  // A neighbour-pairing module with torchscale's frame and centre, on rotate_half cases.
  const GridCase with_xpos = make_case(32, 40, 24);
  const GridCase plain = make_case(32, 40, 24, [](Case& c) { c.xpos = false; });
  Twist cached = cache_frame(with_xpos.params, 32);
  cached.other_layout = true;
  Twist unasked = cached;
  unasked.xpos_always = true;
  Twist missing = cached;  // a module with no XPOS at all, on an XPOS case
  missing.keys_unscaled = true;
  for (DType t : kDtypes) {
    INFO(dtype_name(t));
    // In a 16-bit dtype the cache frame's own centre, 12 positions away, fits as well.
    TwistedCandidate module(cached);
    const Record r = evaluate(module, with_xpos, t);
    REQUIRE(r.diagnosis);
    check_bug(r, t == DType::fp32 ? "wrong-layout + origin + shared-centre" : r.diagnosis->verdict);
    CHECK_THAT(r.diagnosis->verdict, Catch::Matchers::StartsWith("wrong-layout + origin"));
    CHECK_THAT(r.diagnosis->explanation, Contains("interleaved (2j, 2j+1) layout instead of half") &&
                                             Contains("counted from the first cached key"));
    check_verdict(plain, unasked, t, "wrong-layout + xpos-unasked + origin + shared-centre", Contains("xpos = false"));
    check_verdict(with_xpos, missing, t, "wrong-layout + origin + xpos-missing-on-keys");
  }
}
