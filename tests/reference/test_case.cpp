#include <cmath>
#include <limits>
#include <string>

#include <catch2/catch.hpp>

#include "xposcheck/reference/case.hpp"

using namespace xposcheck;
using Catch::Matchers::Contains;

namespace {

Case valid_case() {
  Case c;
  c.head_dim = 8;
  c.seq_len = 16;
  return c;
}

// The message of the InvalidParameter that validate throws, or "" when it accepts c.
std::string rejection(const Case& c) {
  try {
    validate(c);
  } catch (const InvalidParameter& e) {
    return e.what();
  }
  return "";
}

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

}  // namespace

TEST_CASE("a minimal case is valid and resolves its defaults", "[case]") {
  Case c = valid_case();
  CHECK(rejection(c).empty());
  CHECK(c.rotary() == 8);
  CHECK(c.pairs() == 4);
  CHECK(c.centre() == 8);
  CHECK(c.key_rows() == 16);
  c.mem_len = 5;
  c.seq_len = 7;
  CHECK(c.centre() == 3);
  CHECK(c.key_position(0) == -5);
  CHECK(c.key_position(11) == 6);
  CHECK(rejection(c).empty());
}

TEST_CASE("head_dim must be even and at least 2", "[case]") {
  Case c = valid_case();
  c.head_dim = 7;
  CHECK(rejection(c) == "invalid head_dim = 7: must be even and between 2 and 2^34");
  c.head_dim = 0;
  CHECK_THAT(rejection(c), Contains("invalid head_dim = 0"));
  c.head_dim = -2;
  CHECK_THAT(rejection(c), Contains("invalid head_dim = -2"));
  c.head_dim = 2;
  CHECK(rejection(c).empty());
}

TEST_CASE("rotary_dim must be even and between 2 and head_dim", "[case]") {
  Case c = valid_case();
  c.rotary_dim = 3;
  CHECK(rejection(c) == "invalid rotary_dim = 3: must be even and 2 <= rotary_dim <= head_dim (= 8)");
  c.rotary_dim = 10;
  CHECK_THAT(rejection(c), Contains("invalid rotary_dim = 10") && Contains("head_dim (= 8)"));
  c.rotary_dim = 0;
  CHECK_THAT(rejection(c), Contains("invalid rotary_dim = 0"));
  c.rotary_dim = 2;
  CHECK(rejection(c).empty());
}

TEST_CASE("base must be finite and above 1", "[case]") {
  Case c = valid_case();
  c.base = 1.0;
  CHECK(rejection(c) == "invalid base = 1: must be finite and > 1");
  c.base = 0.5;
  CHECK_THAT(rejection(c), Contains("invalid base = 0.5"));
  c.base = kInf;
  CHECK_THAT(rejection(c), Contains("invalid base = inf"));
  c.base = kNaN;
  CHECK_THAT(rejection(c), Contains("invalid base = nan"));
}

TEST_CASE("base_rescale must be finite and at least 1", "[case]") {
  Case c = valid_case();
  c.base_rescale = 0.5;
  CHECK(rejection(c) == "invalid base_rescale = 0.5: must be finite and >= 1");
  c.base_rescale = kNaN;
  CHECK_THAT(rejection(c), Contains("invalid base_rescale = nan"));
  c.base_rescale = kInf;
  CHECK_THAT(rejection(c), Contains("invalid base_rescale = inf"));
}

TEST_CASE("base_rescale other than 1 needs rotary_dim above 2", "[case]") {
  Case c = valid_case();
  c.rotary_dim = 2;
  c.base_rescale = 2.0;
  CHECK_THAT(rejection(c), Contains("invalid base_rescale = 2") &&
                               Contains("must be 1 when rotary_dim = 2"));
  c.base_rescale = 1.0;
  CHECK(rejection(c).empty());
  c.rotary_dim = 4;
  c.base_rescale = 2.0;
  CHECK(rejection(c).empty());
}

TEST_CASE("base_rescale may not overflow the rescaled base", "[case]") {
  Case c = valid_case();
  c.rotary_dim = 4;  // exponent R/(R-2) = 2
  c.base = 1e300;
  c.base_rescale = 1e10;
  CHECK_THAT(rejection(c), Contains("invalid base_rescale = 10000000000") &&
                               Contains("overflows binary64"));
}

TEST_CASE("interpolation must be finite and at least 1", "[case]") {
  Case c = valid_case();
  c.interpolation = 0.99;
  CHECK(rejection(c) == "invalid interpolation = 0.99: must be finite and >= 1");
  c.interpolation = kInf;
  CHECK_THAT(rejection(c), Contains("invalid interpolation = inf"));
  c.interpolation = 1.0;
  CHECK(rejection(c).empty());
}

TEST_CASE("scale_base must be finite and positive", "[case]") {
  Case c = valid_case();
  c.scale_base = 0.0;
  CHECK(rejection(c) == "invalid scale_base = 0: must be finite and > 0");
  c.scale_base = -512.0;
  CHECK_THAT(rejection(c), Contains("invalid scale_base = -512"));
  c.scale_base = kNaN;
  CHECK_THAT(rejection(c), Contains("invalid scale_base = nan"));
  c.scale_base = 1e-3;
  c.xpos = false;  // with XPOS on, so small a base overflows: see the next test
  CHECK(rejection(c).empty());
}

// A golden value that is not finite judges nothing (SPEC section 2: overflow is the
// dtype's envelope, never binary64's): cases whose XPOS scale leaves binary64 are
// refused up front, naming both parameters and the bound.
TEST_CASE("XPOS scales beyond binary64 are refused, naming center, scale_base and the bound",
          "[case]") {
  Case c = valid_case();
  c.scale_base = 1e-300;
  CHECK_THAT(rejection(c), Contains("invalid center =") && Contains("scale_base = 1e-300") &&
                               Contains("558.8"));
  c.scale_base = 512;
  c.center = 400000;
  CHECK_THAT(rejection(c), Contains("invalid center = 400000") && Contains("|p - center| / scale_base"));
  c.center = 1L << 52;
  CHECK_THAT(rejection(c), Contains("invalid center = 4503599627370496"));
  c.xpos = false;  // the centre only matters to the XPOS scale
  CHECK(rejection(c).empty());
  c.xpos = true;
  c.center = 250000;  // |p - c| / B about 488: within binary64
  CHECK(rejection(c).empty());
}

TEST_CASE("seq_len must be at least 1", "[case]") {
  Case c = valid_case();
  c.seq_len = 0;
  CHECK(rejection(c) == "invalid seq_len = 0: must be between 1 and 2^34");
  c.seq_len = (1L << 34) + 1;
  CHECK_THAT(rejection(c), Contains("invalid seq_len = 17179869185"));
}

TEST_CASE("mem_len must not be negative", "[case]") {
  Case c = valid_case();
  c.mem_len = -1;
  CHECK(rejection(c) == "invalid mem_len = -1: must be between 0 and 2^34");
}

TEST_CASE("center may be any integer that keeps positions exact", "[case]") {
  Case c = valid_case();
  c.center = -1000;
  CHECK(rejection(c).empty());
  c.center = 123456789;
  c.xpos = false;
  CHECK(rejection(c).empty());
  c.center = std::numeric_limits<long>::min();
  CHECK_THAT(rejection(c), Contains("invalid center = -9223372036854775808") &&
                               Contains("|center| <= 2^52"));
}

TEST_CASE("batch and heads must be at least 1", "[case]") {
  Case c = valid_case();
  c.batch = 0;
  CHECK(rejection(c) == "invalid batch = 0: must be between 1 and 2^34");
  c.batch = 1;
  c.heads = -3;
  CHECK(rejection(c) == "invalid heads = -3: must be between 1 and 2^34");
}

TEST_CASE("oversized cases are refused before anything is allocated", "[case]") {
  Case c = valid_case();
  c.head_dim = 1L << 20;
  c.seq_len = 1L << 20;
  CHECK_THAT(rejection(c), Contains("invalid sizes") && Contains("seq_len = 1048576") &&
                               Contains("above the limit of 2^34"));
  c.batch = 1L << 34;
  c.heads = 1L << 34;
  CHECK_THAT(rejection(c), Contains("more than 2^64"));
}

TEST_CASE("shapes and element counts", "[case]") {
  Case c = valid_case();
  c.batch = 2;
  c.heads = 3;
  c.mem_len = 4;
  CHECK(c.q_shape() == Shape{2, 3, 16, 8});
  CHECK(c.k_shape() == Shape{2, 3, 20, 8});
  CHECK(c.logits_shape() == Shape{2, 3, 16, 20});
  CHECK(c.output_elements() == 2 * 3 * (16 + 20) * 8);
  CHECK(element_count(c.q_shape()) == 768);
  CHECK(element_count({}) == 1);
  CHECK(element_count({3, 0, 2}) == 0);
  CHECK(shape_string(c.q_shape()) == "[2, 3, 16, 8]");
  CHECK(shape_string({}) == "[]");
  CHECK_THROWS_AS(element_count({1UL << 40, 1UL << 40}), std::overflow_error);
}

TEST_CASE("layout names", "[case]") {
  CHECK(parse_layout("half") == Layout::half);
  CHECK(parse_layout("interleaved") == Layout::interleaved);
  CHECK_FALSE(parse_layout("rotate_half"));
  CHECK(layout_name(Layout::half) == "half");
  CHECK(layout_name(Layout::interleaved) == "interleaved");
  Case c = valid_case();
  c.layout = Layout::interleaved;
  CHECK(c.pair_a(3) == 6);
  CHECK(c.pair_b(3) == 7);
  c.layout = Layout::half;
  CHECK(c.pair_a(3) == 3);
  CHECK(c.pair_b(3) == 7);
}

TEST_CASE("case ids list only non-default parameters", "[case]") {
  Case c;
  c.head_dim = 128;
  c.seq_len = 1024;
  CHECK(case_id(c) == "D128-N1024");
  c.mem_len = 100;
  CHECK(case_id(c) == "D128-N1024-M100");
  c.rotary_dim = 128;  // explicit default
  c.center = 512;      // explicit default
  CHECK(case_id(c) == "D128-N1024-M100");
  c.rotary_dim = 64;
  c.layout = Layout::interleaved;
  c.xpos = false;
  c.scale_base = 256;
  c.base = 500000;
  c.base_rescale = 2;
  c.interpolation = 4;
  c.center = 10;
  c.batch = 2;
  c.heads = 4;
  CHECK(case_id(c) ==
        "D128-N1024-M100-R64-interleaved-noxpos-B256-base500000-f2-a4-c10-b2-h4");
  c = Case{};
  c.head_dim = 2;
  c.seq_len = 1;
  c.base_rescale = 1.5;
  c.interpolation = 0.1 + 0.2;  // the shortest string that reads back exactly
  c.center = -3;
  CHECK(case_id(c) == "D2-N1-f1.5-a0.30000000000000004-c-3");
}
