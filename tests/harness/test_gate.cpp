// The gate verdict: OUT_OF_RANGE excuses only the elements the dtype cannot hold, so
// a record whose representable part is wrong fails the gate whatever the policy.
#include <catch2/catch.hpp>

#include <string>

#include "harness_fixtures.hpp"
#include "xposcheck/harness/gate.hpp"
#include "xposcheck/harness/results.hpp"

using namespace xposcheck;
using namespace xposcheck::testing;

namespace {

// D = 16, N = 9000: fp16 overflows some 4000-4600 positions from the centre.
GridCase beyond_fp16() { return grid_case(16, 9000, 0); }

}  // namespace

TEST_CASE("OUT_OF_RANGE fails the gate when the part the dtype can hold is wrong") {
  const std::string name = GENERATE(as<std::string>{}, "random-garbage", "wrong-layout", "swapped-qk-scale");
  const Record r = run_builtin(name, beyond_fp16(), DType::fp16);
  INFO(name << ": " << r.message);
  REQUIRE(r.outcome == Outcome::out_of_range);
  REQUIRE(r.range);
  CHECK(r.range->in_range_outcome != "PASS");
  CHECK(in_range_part_fails(r));
  CHECK(fails_gate(r));
  CHECK(fails_gate(r, GatePolicy{.out_of_range_fails = false}));
  CHECK(r.message.find("fails the gate") != std::string::npos);
  Results results;
  results.records.push_back(r);
  CHECK(gate_verdict(results).failed());
}

TEST_CASE("correct candidates still pass with OUT_OF_RANGE") {
  const std::string name = GENERATE(as<std::string>{}, "fp32-angles", "native-dtype");
  const Record r = run_builtin(name, beyond_fp16(), DType::fp16);
  INFO(name << ": " << r.message);
  REQUIRE(r.outcome == Outcome::out_of_range);
  CHECK(r.range->in_range_outcome == "PASS");
  CHECK_FALSE(fails_gate(r));
  CHECK(fails_gate(r, GatePolicy{.out_of_range_fails = true}));
  Results results;
  results.records.push_back(r);
  CHECK_FALSE(gate_verdict(results).failed());
}

TEST_CASE("an OUT_OF_RANGE record without its range evidence cannot pass") {
  Record r;
  r.outcome = Outcome::out_of_range;
  CHECK(fails_gate(r));
}
