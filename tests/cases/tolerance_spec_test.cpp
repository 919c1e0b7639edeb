// Tolerance overrides: read from [tolerance], layered by merge.
#include <catch2/catch.hpp>

#include "xposcheck/cases/grid.hpp"
#include "xposcheck/cases/tolerance_spec.hpp"

using namespace xposcheck;

TEST_CASE("rule names round-trip") {
  CHECK(rule_name(ToleranceRule::position_aware) == "position-aware");
  CHECK(rule_name(ToleranceRule::relative) == "relative");
  CHECK(parse_rule("position-aware") == ToleranceRule::position_aware);
  CHECK(parse_rule("relative") == ToleranceRule::relative);
  CHECK_FALSE(parse_rule("Relative").has_value());
  CHECK_FALSE(parse_rule("").has_value());
}

TEST_CASE("[tolerance] and [tolerance.<dtype>] are read") {
  Grid g = parse_grid(R"([axes]
head_dim = 64
seq_len = 1
[tolerance]
rule = "relative"
base_ulps = 8
relative_k = 2.5
[tolerance.bf16]
angle_factor = 4.0
base_ulps = 16
[tolerance.float16]
logits_factor = 0.5
)", "t.toml");
  const ToleranceOverrides& o = g.tolerance;
  CHECK(o.all.rule == ToleranceRule::relative);
  CHECK(o.all.base_ulps == 8.0);
  CHECK(o.all.relative_k == 2.5);
  CHECK_FALSE(o.all.angle_factor.has_value());
  REQUIRE(o.per_dtype.size() == 2);

  ToleranceSpec bf16 = o.for_dtype(DType::bf16);
  CHECK(bf16.rule == ToleranceRule::relative);
  CHECK(bf16.base_ulps == 16.0);
  CHECK(bf16.angle_factor == 4.0);
  CHECK(bf16.relative_k == 2.5);

  ToleranceSpec fp16 = o.for_dtype(DType::fp16);
  CHECK(fp16.base_ulps == 8.0);
  CHECK(fp16.logits_factor == 0.5);
  CHECK_FALSE(fp16.angle_factor.has_value());

  ToleranceSpec fp32 = o.for_dtype(DType::fp32);
  CHECK(fp32.base_ulps == 8.0);
  CHECK_FALSE(fp32.logits_factor.has_value());
  CHECK_FALSE(fp32.scale_factor.has_value());
}

TEST_CASE("ToleranceSpec::merge replaces only the fields set") {
  ToleranceSpec a;
  a.base_ulps = 4;
  a.angle_factor = 2;
  ToleranceSpec b;
  b.angle_factor = 8;
  b.rule = ToleranceRule::relative;
  a.merge(b);
  CHECK(a.base_ulps == 4.0);
  CHECK(a.angle_factor == 8.0);
  CHECK(a.rule == ToleranceRule::relative);
  CHECK_FALSE(a.scale_factor.has_value());
}

TEST_CASE("a later layer wins for every dtype") {
  ToleranceOverrides file;  // as a grid file would give
  file.all.base_ulps = 8;
  file.per_dtype[DType::bf16].base_ulps = 16;
  file.per_dtype[DType::bf16].angle_factor = 4;

  ToleranceOverrides command_line;
  command_line.all.base_ulps = 2;
  command_line.per_dtype[DType::fp16].scale_factor = 3;
  file.merge(command_line);

  // The command line's base_ulps for every dtype replaces the file's bf16 refinement;
  // fields it does not set keep the file's values.
  CHECK(file.for_dtype(DType::bf16).base_ulps == 2.0);
  CHECK(file.for_dtype(DType::bf16).angle_factor == 4.0);
  CHECK(file.for_dtype(DType::fp32).base_ulps == 2.0);
  CHECK(file.for_dtype(DType::fp16).scale_factor == 3.0);
  CHECK_FALSE(file.for_dtype(DType::fp32).scale_factor.has_value());
}
