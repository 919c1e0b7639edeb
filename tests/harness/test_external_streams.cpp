// Streams through external candidates: one process serves a stream's calls in order
// in one round trip, so a Python module that keeps tables between calls is judged per
// step; its correct form passes, its rotary-embedding-torch #11 form is named.
#include <catch2/catch.hpp>

#include "external_test_support.hpp"

using namespace xposcheck;
using namespace xposcheck::test;

namespace {

const Grid& stream_grid() {
  static const Grid grid = small_grid(
      "head_dim = 32\nprefill = 9\nsteps = 12\nstep_rows = [1, 3]\nmem_len = [0, 5]\n",
      "[\"fp32\", \"bf16\"]");
  return grid;
}

std::unique_ptr<SubprocessCandidate> decoder(const std::string& cache) {
  return std::make_unique<SubprocessCandidate>(
      options_for("decoder-" + cache, testing_command("decoder_cache.py") + " --cache " + cache, 4));
}

}  // namespace

TEST_CASE("a decoder keeping its tables between calls passes every stream", "[external][streams]") {
  auto candidate = decoder("positions");
  const std::vector<Record> records = sweep_one(stream_grid(), candidate);
  REQUIRE(records.size() == 8);
  for (const Record& r : records) {
    INFO(r.case_id << " " << dtype_name(r.dtype) << ": " << r.message);
    CHECK(r.outcome == Outcome::pass);
    REQUIRE(r.stream);
    CHECK(r.stream->steps.size() == 13);
    REQUIRE(r.stream->one_pass_difference);
    CHECK(*r.stream->one_pass_difference == 0);
  }
  // A stream's 13 calls and its one-call rerun travel together although the batch
  // size is 4: one round trip per stream.
  const ExternalStats s = candidate->stats();
  CHECK(s.cases == 8 * 14);
  CHECK(s.batches == 8);
}

TEST_CASE("a decoder caching its tables by length fails from the second step, named", "[external][streams]") {
  const std::vector<Record> records = sweep_one(stream_grid(), decoder("length"));
  REQUIRE(records.size() == 8);
  for (const Record& r : records) {
    INFO(r.case_id << " " << dtype_name(r.dtype) << ": " << r.message);
    CHECK(r.outcome == Outcome::tolerance);
    REQUIRE(r.stream);
    CHECK(r.stream->first_failing_step == 2);
    REQUIRE(r.diagnosis);
    CHECK(r.diagnosis->verdict == "cache-without-offset");
  }
}
