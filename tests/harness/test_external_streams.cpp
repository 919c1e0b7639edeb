// Streams through external candidates: one process serves a stream's calls in order,
// in one round trip or as one case the helper splits into calls, so a Python module
// that keeps tables between calls is judged per step; its correct form passes, its
// rotary-embedding-torch #11 form is named.
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
  // The first batch's streams go call by call (13 calls in one round trip although the
  // batch size is 4); once the helper has said it runs streams whole, each stream is
  // one case: fewer cases than calls.
  const ExternalStats s = candidate->stats();
  CHECK(candidate->runs_whole_streams());
  CHECK(s.cases < 8 * 14);
  CHECK(s.cases >= 8 * 2);
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

TEST_CASE("a stream failing mid-way names its step, whole or call by call", "[external][streams]") {
  const Grid grid = small_grid("head_dim = 16\nprefill = 9\nsteps = 10\n");  // step i at position 8 + i
  for (bool whole : {true, false}) {
    INFO((whole ? "sent whole" : "call by call"));
    const auto fault = [&](const std::string& kind, double timeout_s) {
      SubprocessOptions o = options_for("fault-" + kind, testing_command("stream_fault.py") + " --fault " + kind + " --at 14");
      o.prestart = whole;  // no process started ahead: capabilities unknown, calls one by one
      o.case_timeout_s = timeout_s;
      auto candidate = std::make_unique<SubprocessCandidate>(o);
      const std::vector<Record> records = sweep_one(grid, candidate);
      // Without the probe it learns the capability only from its first batch, which a
      // one-stream grid does not outlive.
      if (whole) CHECK(candidate->runs_whole_streams());
      REQUIRE(records.size() == 1);
      return records[0];
    };
    const Record raised = fault("raise", 30);
    INFO(raised.message);
    CHECK(raised.outcome == Outcome::crash);
    CHECK_THAT(raised.message, Catch::Contains("step 6 (position 14)") && Catch::Contains("KV cache index out of range"));
    const Record shaped = fault("shape", 30);
    INFO(shaped.message);
    CHECK(shaped.outcome == Outcome::dim_mismatch);
    CHECK_THAT(shaped.message, Catch::Contains("step 6 (position 14)") && Catch::Contains("k_out"));
    const Record hung = fault("hang", 3);
    INFO(hung.message);
    CHECK(hung.outcome == Outcome::timeout);
  }
}

TEST_CASE("x-transformers' RotaryEmbedding on a cache-frame stream: its centre moves, its logits fail",
          "[external][streams][torch]") {
  if (!torch_available()) {
    WARN("skipped: " << kPython << " cannot import torch");
    return;
  }
  const std::string src = XPOSCHECK_SOURCE_DIR;
  const std::string adapter = "PYTHONPATH='" + src + "/python' " + kPython + " '" + src +
                              "/python/candidates/torch_adapter.py' --path '" + src +
                              "/python/candidates' --module torch_xtransformers --attr RotaryEmbedding";
  const Grid grid = small_grid("head_dim = 64\nfirst_position = 0\nprefill = 33\nsteps = 20\n");
  const std::vector<Record> records = sweep_one(grid, std::make_unique<SubprocessCandidate>(options_for("xt", adapter)));
  REQUIRE(records.size() == 1);
  const Record& r = records[0];
  INFO(r.message);
  CHECK(r.outcome == Outcome::tolerance);
  REQUIRE(r.stream);
  // Within the prefill its queries and keys share a centre; every later step's logits
  // meet keys cached with other centres.
  CHECK(r.stream->steps[0].logits_ratio < 1);
  for (std::size_t i = 1; i < r.stream->steps.size(); ++i) CHECK(r.stream->steps[i].logits_ratio > 1);
  // The last step's own rows are right: its centre has reached the stream's.
  CHECK(r.stream->steps.back().q_ratio < 1);
  REQUIRE(r.diagnosis);
  CHECK(r.diagnosis->verdict == "centre-moves");
}
