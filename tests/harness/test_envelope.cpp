// The safe envelope: where each dtype stops passing, from the records of a sweep.
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>

#include "drift_fixtures.hpp"
#include "xposcheck/harness/envelope.hpp"

using namespace xposcheck;
using namespace xposcheck::testing;
using Catch::Matchers::Contains;

namespace {

Record at(long n, long m, Outcome o, const std::string& id = "") {
  Record r;
  r.candidate = "cand";
  r.params.head_dim = 8;
  r.params.seq_len = n;
  r.params.mem_len = m;
  r.case_id = id.empty() ? case_id(r.params) + "-s1" : id;
  r.dtype = DType::fp16;
  r.outcome = o;
  return r;
}

const EnvelopeLimit& limit_for(const std::vector<Envelope>& all, const std::string& candidate, DType t, long m) {
  const auto e = std::find_if(all.begin(), all.end(),
                              [&](const Envelope& x) { return x.candidate == candidate && x.dtype == t; });
  REQUIRE(e != all.end());
  const auto l = std::find_if(e->limits.begin(), e->limits.end(), [&](const EnvelopeLimit& x) { return x.mem_len == m; });
  REQUIRE(l != e->limits.end());
  return *l;
}

}  // namespace

TEST_CASE("the envelope ends below the first length that does not pass") {
  Results r;
  r.records = {at(1, 0, Outcome::pass),          at(4096, 0, Outcome::pass),
               at(8191, 0, Outcome::drift),        // drift is judged on its own
               at(9000, 0, Outcome::out_of_range), at(12000, 0, Outcome::pass),
               at(64, 100, Outcome::pass),         at(128, 100, Outcome::tolerance),
               at(128, 100, Outcome::pass, "D8-N128-M100-interleaved-s1"),
               at(1, 8192, Outcome::out_of_range), at(7, 5, Outcome::pass)};
  const std::vector<Envelope> envelopes = compute_envelopes(r);
  REQUIRE(envelopes.size() == 1);
  const auto& limits = envelopes[0].limits;
  REQUIRE(limits.size() == 4);
  CHECK(limits[0] == EnvelopeLimit{0, 8191, 9000, Outcome::out_of_range, "D8-N9000-s1"});
  CHECK(limits[1] == EnvelopeLimit{5, 7, 0, std::nullopt, ""});
  CHECK(limits[2] == EnvelopeLimit{100, 64, 128, Outcome::tolerance, "D8-N128-M100-s1"});
  CHECK(limits[3] == EnvelopeLimit{8192, 0, 1, Outcome::out_of_range, "D8-N1-M8192-s1"});
  CHECK(describe_envelope(envelopes[0]) ==
        "envelope cand fp16: M=0: N<=8191 (N=9000 OUT_OF_RANGE: D8-N9000-s1), M=5: N<=7 (all pass), "
        "M=100: N<=64 (N=128 TOLERANCE: D8-N128-M100-s1), M=8192: none (N=1 OUT_OF_RANGE: D8-N1-M8192-s1)");

  // Whatever the record order (merged shards), the same envelope.
  std::mt19937 shuffle_rng(7);
  for (int i = 0; i < 5; ++i) {
    std::shuffle(r.records.begin(), r.records.end(), shuffle_rng);
    CHECK(compute_envelopes(r) == envelopes);
  }
}

TEST_CASE("envelopes are kept per candidate and dtype, in a fixed order") {
  Results r;
  Record b = at(8, 0, Outcome::pass);
  b.candidate = "b";
  Record a16 = at(8, 0, Outcome::pass), a32 = at(8, 0, Outcome::tolerance);
  a16.candidate = a32.candidate = "a";
  a32.dtype = DType::fp32;
  r.records = {b, a16, a32};
  const auto e = compute_envelopes(r);
  REQUIRE(e.size() == 3);
  CHECK((e[0].candidate == "a" && e[0].dtype == DType::fp32 && e[0].limits[0].max_seq_len == 0));
  CHECK((e[1].candidate == "a" && e[1].dtype == DType::fp16 && e[1].limits[0].max_seq_len == 8));
  CHECK(e[2].candidate == "b");
  CHECK(compute_envelopes(Results{}).empty());
}

// SPEC section 2: with M = 0 the fp16 key scale overflows near N = 9,000; bf16 and
// fp32 keep their range up to N ~ 72,500. Short rows (D = 16) keep this cheap.
TEST_CASE("the fp16 envelope of every correct built-in candidate ends where the query scale leaves the normal range, near N = 7,900") {
  const Grid grid = parse_grid(R"(
name = "envelope-edge"
dtypes = ["fp32", "bf16", "fp16"]
[axes]
head_dim = 16
seq_len = [7000, 7800, 8000, 8191, 8500, 9000, 10000]
mem_len = [0, 8192]
)", "envelope-edge");
  const std::vector<std::string> names = correct_builtin_names();
  REQUIRE(names.size() >= 3);
  const Results results = sweep_results(grid, names, "envelope-edge");
  const std::vector<Envelope> envelopes = compute_envelopes(results);
  CHECK(envelopes.size() == names.size() * 3);
  for (const std::string& name : names) {
    INFO(name);
    // SPEC section 2: the query scale zeta_0^((p - c)/512) leaves fp16's normal range
    // (2^-14) near N = 7,900, before the key scale overflows near N = 9,000.
    const EnvelopeLimit& fp16 = limit_for(envelopes, name, DType::fp16, 0);
    INFO(describe_limit(fp16));
    CHECK(fp16.max_seq_len == 7800);
    CHECK(fp16.first_failing_seq_len == 8000);
    CHECK(fp16.first_failure == Outcome::out_of_range);
    // Memory keys at -8192 scale like zeta^((8192 + c) / 512): far below the normal
    // range, so the envelope ends sooner with memory.
    const EnvelopeLimit& with_memory = limit_for(envelopes, name, DType::fp16, 8192);
    INFO(describe_limit(with_memory));
    CHECK(with_memory.max_seq_len <= fp16.max_seq_len);
    CHECK(with_memory.first_failure == Outcome::out_of_range);
    for (DType t : {DType::bf16, DType::fp32}) {
      for (long m : {0L, 8192L}) {
        const EnvelopeLimit& l = limit_for(envelopes, name, t, m);
        INFO(dtype_name(t) << " " << describe_limit(l));
        CHECK(l.all_pass());
        CHECK(l.max_seq_len == 10000);
      }
    }
  }
}
