// Streams (docs/streams.md): a prefill and steps, each call with only its new rows;
// the cached keys are the candidate's own; every step judged, bugs between calls named.
#include <catch2/catch.hpp>

#include <fstream>
#include <functional>
#include <set>

#include <nlohmann/json.hpp>

#include "harness_fixtures.hpp"
#include "xposcheck/harness/stream.hpp"
#include "temp_dir.hpp"
#include "xposcheck/harness/results.hpp"
#include "xposcheck/reference/golden.hpp"
#include "xposcheck/reference/inputs.hpp"

using namespace xposcheck;
using namespace xposcheck::testing;
using Catch::Matchers::Contains;

namespace {

Case stream_case(long prefill, long steps, long step_rows, long mem_len) {
  Case c;
  c.head_dim = 32;
  c.mem_len = mem_len;
  c.stream = StreamShape{prefill, step_rows};
  c.seq_len = prefill + steps * step_rows;
  return c;
}

GridCase grid_case_of(const Case& c) { return GridCase{case_id(c) + "-s1", c, 1}; }

Results sweep(const Grid& grid, const std::vector<std::string>& names) {
  std::vector<std::unique_ptr<Candidate>> candidates;
  for (const auto& n : names) candidates.push_back(make_builtin(n));
  std::vector<std::string> order;
  for (const GridCase& gc : grid.cases) order.push_back(gc.id);
  TempDir dir;
  ResultsStore store(dir.path / "results.json", RunInfo{}, order);
  run_sweep(grid, candidates, SweepOptions{}, store);
  return store.finish();
}

std::vector<std::string> stream_bug_names() {
  std::vector<std::string> names;
  for (const CandidateInfo& info : builtin_candidates())
    if (info.scope == BugScope::streams) names.push_back(info.name);
  return names;
}

std::string expected_verdict(const std::string& name) {
  for (const CandidateInfo& info : builtin_candidates())
    if (info.name == name) return info.expected_verdict;
  return "";
}

}  // namespace

TEST_CASE("a stream's calls sit at their true positions with the stream's centre") {
  const Case c = stream_case(5, 3, 2, 4);  // N = 11, M = 4: keys -4..10
  REQUIRE(c.stream_calls() == 4);
  const Case prefill = c.stream_call(0);
  CHECK(prefill.seq_len == 5);
  CHECK(prefill.mem_len == 4);
  CHECK(prefill.first_key_position() == -4);
  CHECK(prefill.centre() == 5);  // floor(11 / 2) of the whole case
  const Case step2 = c.stream_call(2);
  CHECK(step2.seq_len == 2);
  CHECK(step2.mem_len == 0);
  CHECK(step2.first_query_position() == 7);
  CHECK(step2.centre() == 5);
  CHECK(c.call_first_query_row(2) == 7);
  CHECK(c.call_first_key_row(2) == 11);
  CHECK(c.call_of_query_row(4) == 0);
  CHECK(c.call_of_query_row(5) == 1);
  CHECK(c.call_of_key_row(14) == 3);
  CHECK(visible_keys(c, 0) == 9);
  CHECK(visible_keys(c, 10) == 15);
  CHECK_THAT(case_id(c), Contains("-stream5+3x2"));
}

TEST_CASE("a stream that does not divide into steps is refused") {
  Case c = stream_case(5, 3, 2, 0);
  c.seq_len = 12;
  CHECK_THROWS_WITH(validate(c), Contains("step_rows") && Contains("divide"));
  c = stream_case(5, 3, 2, 0);
  c.stream->prefill = 11;
  CHECK_THROWS_WITH(validate(c), Contains("prefill"));
}

TEST_CASE("golden outputs of every call equal the rows of the whole case's, bit for bit") {
  for (const Case& c : {stream_case(7, 5, 1, 3), stream_case(4, 3, 5, 0)}) {
    const Inputs in = generate_inputs(c, 1, DType::bf16);
    const Golden whole = golden_fast(c, in.q, in.k);
    const StreamCalls calls = stream_calls(c, in.q, in.k);
    std::vector<Attempt> attempts;
    for (std::size_t i = 0; i < calls.cases.size(); ++i) {
      const Golden g = golden_fast(calls.cases[i], calls.q_in[i], calls.k_in[i]);
      attempts.push_back(CandidateOutput{g.q_out, g.k_out, "bf16", "bf16"});
    }
    const Attempt joined = join_stream(c, DType::bf16, calls, attempts);
    REQUIRE(std::holds_alternative<CandidateOutput>(joined));
    CHECK(std::get<CandidateOutput>(joined).q_out.data == whole.q_out.data);
    CHECK(std::get<CandidateOutput>(joined).k_out.data == whole.k_out.data);
  }
}

TEST_CASE("a call returning the wrong shape names its step") {
  const Case c = stream_case(3, 2, 1, 0);
  const Inputs in = generate_inputs(c, 1, DType::fp32);
  const StreamCalls calls = stream_calls(c, in.q, in.k);
  std::vector<Attempt> attempts;
  for (std::size_t i = 0; i < calls.cases.size(); ++i)
    attempts.push_back(CandidateOutput{calls.q_in[i], i == 2 ? calls.q_in[0] : calls.k_in[i], "fp32", "fp32"});
  const Attempt joined = join_stream(c, DType::fp32, calls, attempts);
  REQUIRE(std::holds_alternative<CandidateFailure>(joined));
  CHECK(std::get<CandidateFailure>(joined).kind == FailureKind::shape);
  CHECK_THAT(std::get<CandidateFailure>(joined).message, Contains("step 2 (position 4)") && Contains("k_out"));
}

// native-dtype rounds its XPOS scale table to the dtype: in fp16 the table overflows
// before the outputs do (docs/candidates.md), a real finding, so the candidates that
// must pass everywhere are those holding their tables in fp32 or fp64.
TEST_CASE("correct built-ins pass every stream of the decode grid in every dtype") {
  const Results results = sweep(shipped_grid("decode.toml"), {"fp32-angles", "fp64-angles"});
  REQUIRE_FALSE(results.records.empty());
  std::size_t beyond = 0;
  for (const Record& r : results.records) {
    INFO(r.candidate << " " << r.case_id << " " << dtype_name(r.dtype) << ": " << r.message);
    if (r.outcome == Outcome::out_of_range) {
      // fp16 leaves its range during the cache-frame streams; nothing else may fail.
      CHECK(r.dtype == DType::fp16);
      CHECK(r.range->in_range_outcome == "PASS");
      ++beyond;
      continue;
    }
    CHECK(r.outcome == Outcome::pass);
    REQUIRE(r.stream);
    CHECK_FALSE(r.stream->first_failing_step);
    CHECK(r.stream->steps.size() == static_cast<std::size_t>(r.params.stream_calls()));
    // Each call on its own gives the outputs the whole case gives in one call.
    REQUIRE(r.stream->one_pass_difference);
    CHECK(*r.stream->one_pass_difference == 0);
  }
  CHECK(beyond > 0);
}

TEST_CASE("each stream bug fails the decode grid from the step where it starts, named") {
  const std::vector<std::string> names = stream_bug_names();
  REQUIRE(names.size() == 4);
  const Results results = sweep(shipped_grid("decode.toml"), names);
  std::set<std::string> failing;
  for (const Record& r : results.records) {
    if (!fails_gate(r)) continue;
    INFO(r.candidate << " " << r.case_id << " " << dtype_name(r.dtype) << ": " << r.message);
    failing.insert(r.candidate);
    REQUIRE(r.diagnosis);
    INFO("diagnosis: " << summary_line(*r.diagnosis) << " / " << r.diagnosis->evidence);
    // A cache keyed by length, or a table of the prefill's length, gives every call the
    // prefill's positions when the prefill has the steps' shape and starts at 0: the
    // same outputs as positions restarting at 0, which the diagnosis names first.
    const Case prefill = r.params.stream_call(0), step = r.params.stream_call(1);
    const bool alike = prefill.key_rows() == step.key_rows() && prefill.first_key_position() == 0;
    if (r.candidate != "moving-centre" && alike) CHECK(r.diagnosis->verdict == "positions-restart");
    else CHECK(r.diagnosis->verdict == expected_verdict(r.candidate));
    CHECK(r.diagnosis->kind == DiagnosisKind::bug);
    REQUIRE(r.stream);
    REQUIRE(r.stream->first_failing_step);
    const long first = *r.stream->first_failing_step;
    // The prefill is right for every bug but the moving centre; the first step of a
    // shape is right for a cache keyed by shape.
    if (r.candidate == "positions-restart" || r.candidate == "table-at-first-length") CHECK(first == 1);
    if (r.candidate == "cache-without-offset") CHECK(first == (alike ? 1 : 2));
    CHECK_THAT(r.message, Contains("stream fails from"));
    REQUIRE(r.stream->one_pass_difference);
    CHECK(*r.stream->one_pass_difference > 0);
  }
  for (const std::string& name : names) CHECK(failing.count(name) == 1);
}

TEST_CASE("native-dtype's fp16 scale table overflows during the cache-frame streams") {
  const Grid grid = shipped_grid("decode.toml");
  Grid cache_frame = grid;
  std::erase_if(cache_frame.cases, [](const GridCase& gc) { return !gc.params.first_position; });
  cache_frame.dtypes = {DType::fp16};
  REQUIRE_FALSE(cache_frame.cases.empty());
  std::size_t overflowing = 0;
  for (const Record& r : sweep(cache_frame, {"native-dtype"}).records) {
    INFO(r.case_id << ": " << r.message);
    CHECK(r.outcome == Outcome::out_of_range);
    REQUIRE(r.stream);
    if (r.range->in_range_outcome == "PASS") {
      CHECK_FALSE(r.stream->first_failing_step);
      continue;
    }
    // The table leaves fp16 near p = 4,530: the streams that reach beyond it.
    CHECK(r.range->in_range_outcome == "NONFINITE");
    CHECK(r.params.last_position() > 4530);
    REQUIRE(r.stream->first_failing_step);
    CHECK(r.stream->steps[static_cast<std::size_t>(*r.stream->first_failing_step)].nonfinite);
    ++overflowing;
  }
  CHECK(overflowing > 0);
}

TEST_CASE("a moving XPOS centre passes every call's own logits and fails across calls") {
  Case c = stream_case(16, 8, 4, 0);
  c.head_dim = 64;
  c.scale_base = 64;  // a large zeta^(dc/B) per step
  const Record r = run_builtin("moving-centre", grid_case_of(c), DType::fp32);
  INFO(r.message);
  CHECK(fails_gate(r));
  REQUIRE(r.stream);
  REQUIRE(r.tensors.size() == 3);
  CHECK(r.tensors[2].over_tolerance > 0);  // logits against keys cached with other centres
  REQUIRE(r.diagnosis);
  CHECK(r.diagnosis->verdict == "centre-moves");
}

TEST_CASE("stream verdicts survive the results file") {
  const Record r = run_builtin("positions-restart", grid_case_of(stream_case(6, 4, 1, 2)), DType::fp32);
  REQUIRE(r.stream);
  TempDir dir;
  ResultsStore store(dir.path / "r.json", RunInfo{}, {r.case_id});
  store.add(r);
  store.finish();
  const Results back = read_results(dir.path / "r.json");
  REQUIRE(back.records.size() == 1);
  REQUIRE(back.records[0].stream);
  const StreamVerdict& v = *back.records[0].stream;
  CHECK(v.steps.size() == 5);
  CHECK(v.first_failing_step == r.stream->first_failing_step);
  CHECK(v.steps[1].max_ratio() == Approx(r.stream->steps[1].max_ratio()).epsilon(1e-3));
  CHECK(back.records[0].params.stream == r.params.stream);
}

TEST_CASE("a results file whose stream fields are hostile is refused, naming them") {
  const Record r = run_builtin("positions-restart", grid_case_of(stream_case(6, 4, 1, 2)), DType::fp32);
  TempDir dir;
  ResultsStore store(dir.path / "r.json", RunInfo{}, {r.case_id});
  store.add(r);
  store.finish();
  std::ifstream in(dir.path / "r.json");
  const nlohmann::json good = nlohmann::json::parse(in);
  const auto refused = [&](const std::function<void(nlohmann::json&)>& edit, const std::string& part) {
    nlohmann::json bad = good;
    edit(bad["records"][0]);
    std::ofstream(dir.path / "bad.json") << bad.dump();
    CHECK_THROWS_WITH(read_results(dir.path / "bad.json"), Contains(part));
  };
  refused([](nlohmann::json& rec) { rec["stream"]["first_failing_step"] = 99; }, "first_failing_step");
  refused([](nlohmann::json& rec) { rec["stream"]["one_pass_first_step"] = -1; }, "one_pass_first_step");
  refused([](nlohmann::json& rec) { rec["stream"]["steps"][2][0] = 7; }, "stream step 2");
  refused([](nlohmann::json& rec) { rec["stream"]["steps"][1][1] = 1e300; }, "stream step 1");
  refused([](nlohmann::json& rec) { rec["stream"]["steps"] = 3; }, "not an array");
  refused([](nlohmann::json& rec) { rec["case"]["stream"]["step_rows"] = 0; }, "does not divide");
}
