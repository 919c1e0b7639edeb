// Baselines: a sloppier candidate drifts against a baseline of the original, a rerun
// of the original does not; files round-trip byte for byte; bad files are named.
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "drift_fixtures.hpp"
#include "xposcheck/harness/baseline.hpp"

using namespace xposcheck;
using namespace xposcheck::testing;
using Catch::Matchers::Contains;

namespace {

const Grid& smoke() {
  static const Grid grid = shipped_grid("smoke.toml");
  return grid;
}

const Results& original() {
  static const Results r = sweep_results(smoke(), {"fp32-angles"}, "original");
  return r;
}

std::size_t count_outcome(const Results& r, Outcome o) {
  return static_cast<std::size_t>(std::count_if(r.records.begin(), r.records.end(),
                                                [o](const Record& x) { return x.outcome == o; }));
}

const Record& find_record(const Results& r, const std::string& case_id, DType t) {
  const auto it = std::find_if(r.records.begin(), r.records.end(),
                               [&](const Record& x) { return x.case_id == case_id && x.dtype == t; });
  REQUIRE(it != r.records.end());
  return *it;
}

// A record with the given errors on q_out (max, rms), for hand-made scenarios.
Record made_record(const std::string& case_id, long n, Outcome o, double max, double rms) {
  Record r;
  r.candidate = "cand";
  r.case_id = case_id;
  r.params.head_dim = 8;
  r.params.seq_len = n;
  r.dtype = DType::fp16;
  r.outcome = o;
  TensorStats t;
  t.name = "q_out";
  t.compared = true;
  t.max_ulps = max;
  t.rms_ulps = rms;
  r.tensors.push_back(t);
  return r;
}

Results made_results(std::vector<Record> records) {
  Results r;
  r.run.grid_name = "made";
  r.run.grid_fingerprint = "f00d";
  r.records = std::move(records);
  return r;
}

}  // namespace

TEST_CASE("re-running a candidate is bit-for-bit identical and shows no drift") {
  Results again = sweep_results(smoke(), {"fp32-angles"}, "again");
  REQUIRE(again.records.size() == smoke().cases.size() * 3);
  CHECK(first_difference(again, original()) == "");

  const DriftReport report = apply_baseline(again, make_baseline(original()));
  CHECK(report.compared == again.records.size());
  CHECK(report.unchanged == again.records.size());
  CHECK(report.regressed + report.improved + report.new_cases + report.missing == 0);
  CHECK(report.envelope_changes.empty());
  CHECK_FALSE(report.gate_failed());
  CHECK(count_outcome(again, Outcome::pass) == again.records.size());
  for (const Record& r : again.records) {
    REQUIRE(r.drift);
    CHECK(r.drift->baseline_outcome == Outcome::pass);
    CHECK(r.drift->tensors.size() == 3);
  }
}

TEST_CASE("a candidate with sloppier arithmetic drifts against the original's baseline") {
  Results sloppy = sweep_results(smoke(), {"fp32-angles-sloppy"}, "sloppy");
  // Within tolerance everywhere: only the comparison with yesterday can catch it.
  REQUIRE(count_outcome(sloppy, Outcome::pass) == sloppy.records.size());

  DriftOptions options;
  options.baseline_names["fp32-angles-sloppy"] = "fp32-angles";
  const DriftReport report = apply_baseline(sloppy, make_baseline(original()), options);
  INFO(format_drift(sloppy, report));
  CHECK(report.compared == sloppy.records.size());
  CHECK(report.regressed >= sloppy.records.size() / 3);
  CHECK(report.regressed == count_outcome(sloppy, Outcome::drift));
  CHECK(report.improved == 0);
  CHECK(report.gate_failed());

  // Rounding every product to fp16 quadruples the worst error of a long row.
  const Record& r = find_record(sloppy, "D64-N256-s1", DType::fp16);
  CHECK(r.outcome == Outcome::drift);
  REQUIRE(r.drift);
  CHECK(r.drift->verdict == DriftVerdict::regressed);
  CHECK_THAT(r.drift->note, Contains("q_out max 0.5") && Contains("ulps (x"));
  const TensorDrift& q = r.drift->tensors.at(0);
  CHECK(q.name == "q_out");
  CHECK(q.baseline_max <= 0.5001);
  CHECK(q.max > 1.5);
  // Long fp32 rows are dominated by the fp32 angle error both ways: no drift there.
  CHECK(find_record(sloppy, "D64-N256-s1", DType::fp32).outcome == Outcome::pass);
  CHECK_THAT(format_drift(sloppy, report, 100), Contains("REGRESSED fp32-angles-sloppy D64-N256-s1 fp16: DRIFT: "));
  CHECK_THAT(format_drift(sloppy, report), Contains("... and 30 more regressed"));
}

TEST_CASE("drift needs both the factor and the absolute floor") {
  const Baseline baseline = make_baseline(made_results({
      made_record("tiny", 8, Outcome::pass, 0.1, 0.05), made_record("grows", 16, Outcome::pass, 3, 1),
      made_record("small-growth", 32, Outcome::pass, 3, 1), made_record("shrinks", 64, Outcome::pass, 9, 3),
      made_record("breaks", 128, Outcome::pass, 3, 1), made_record("fixed", 256, Outcome::tolerance, 90, 9),
      made_record("gone", 512, Outcome::pass, 1, 1)}));
  Results now = made_results({
      made_record("tiny", 8, Outcome::pass, 0.3, 0.15),         // x3, but only +0.2 ulp
      made_record("grows", 16, Outcome::pass, 7, 1),            // x2.33 and +4 ulps
      made_record("small-growth", 32, Outcome::pass, 5.9, 1.9), // +2.9 ulps, under x2
      made_record("shrinks", 64, Outcome::pass, 2, 1),
      made_record("breaks", 128, Outcome::tolerance, 90, 9),
      made_record("fixed", 256, Outcome::pass, 3, 1),
      made_record("fresh", 600, Outcome::pass, 1, 1)});
  const DriftReport report = apply_baseline(now, baseline);
  auto verdict = [&](const std::string& id) { return find_record(now, id, DType::fp16).drift->verdict; };
  CHECK(verdict("tiny") == DriftVerdict::unchanged);
  CHECK(verdict("grows") == DriftVerdict::regressed);
  CHECK(verdict("small-growth") == DriftVerdict::unchanged);
  CHECK(verdict("shrinks") == DriftVerdict::improved);
  CHECK(verdict("breaks") == DriftVerdict::regressed);
  CHECK(verdict("fixed") == DriftVerdict::improved);
  CHECK(verdict("fresh") == DriftVerdict::new_case);
  CHECK(find_record(now, "grows", DType::fp16).outcome == Outcome::drift);
  CHECK(find_record(now, "breaks", DType::fp16).outcome == Outcome::tolerance);  // keeps its failure
  CHECK(find_record(now, "breaks", DType::fp16).drift->note == "PASS in the baseline, now TOLERANCE");
  CHECK(find_record(now, "fixed", DType::fp16).drift->note == "TOLERANCE in the baseline, now PASS");
  CHECK(find_record(now, "fresh", DType::fp16).outcome == Outcome::pass);  // new is not a failure
  CHECK(find_record(now, "shrinks", DType::fp16).outcome == Outcome::pass);
  CHECK(report.regressed == 2);
  CHECK(report.improved == 2);
  CHECK(report.new_cases == 1);
  CHECK(report.missing == 1);
  CHECK(report.compared == 6);

  SECTION("a stricter factor and floor catch the smaller growth") {
    const DriftReport strict = apply_baseline(now, baseline, DriftOptions{1.5, 0.1, {}});
    CHECK(verdict("small-growth") == DriftVerdict::regressed);
    CHECK(verdict("tiny") == DriftVerdict::regressed);
    CHECK(strict.regressed == 4);
  }
  SECTION("applying the baseline again (a resumed sweep) gives the same verdicts") {
    const DriftReport again = apply_baseline(now, baseline);
    CHECK(again.regressed == report.regressed);
    CHECK(again.improved == report.improved);
    CHECK(count_outcome(now, Outcome::drift) == 1);
  }
}

TEST_CASE("an envelope that shrinks fails the drift gate") {
  auto run = [](Outcome at_9000) {
    return made_results({made_record("N8000", 8000, Outcome::pass, 1, 1),
                         made_record("N9000", 9000, at_9000, 1, 1),
                         made_record("N10000", 10000, Outcome::out_of_range, 0, 0)});
  };
  const Baseline baseline = make_baseline(run(Outcome::pass));
  REQUIRE(baseline.envelopes.size() == 1);
  CHECK(baseline.envelopes[0].limits.at(0).max_seq_len == 9000);

  Results now = run(Outcome::out_of_range);
  const DriftReport report = apply_baseline(now, baseline);
  REQUIRE(report.envelope_changes.size() == 1);
  const EnvelopeChange& c = report.envelope_changes[0];
  CHECK(c.verdict == DriftVerdict::regressed);
  CHECK(c.baseline_max == 9000);
  CHECK(c.max == 8000);
  CHECK(report.gate_failed());
  CHECK_THAT(format_drift(now, report), Contains("REGRESSED envelope cand fp16 M=0: N<=9000 -> N<=8000"));

  SECTION("not from a single shard, whose envelope is partial") {
    now.run.shard = "1/2";
    const DriftReport partial = apply_baseline(now, baseline);
    CHECK(partial.envelope_changes.empty());
    CHECK_THAT(partial.notes.at(0), Contains("shard 1/2"));
  }
}

TEST_CASE("a baseline file round-trips byte for byte and is small and stable") {
  const Baseline b = make_baseline(original());
  const std::string text = format_baseline(b);
  CHECK(format_baseline(parse_baseline(text, "mem")) == text);
  const auto file = scratch_file("roundtrip-baseline.json");
  write_baseline(file, b);
  CHECK(slurp(file) == text);
  CHECK(format_baseline(read_baseline(file)) == text);
  // A second run of the same sweep writes the same bytes: no timings, no dates.
  CHECK(format_baseline(make_baseline(sweep_results(smoke(), {"fp32-angles"}, "stable"))) == text);
  // One line per entry and per envelope limit, 4 significant digits.
  const auto lines = std::count(text.begin(), text.end(), '\n');
  CHECK(static_cast<std::size_t>(lines) == b.entries.size() + 18 /* envelope limits */ + 11);
  CHECK_THAT(text, Contains("{\"candidate\":\"fp32-angles\",\"case\":\"D16-N33-M5-b2-h3-s1\",\"dtype\":\"bf16\","
                            "\"outcome\":\"PASS\",\"max_ulps\":{\"q_out\":0.4997,"));
  CHECK(text.find("timing") == std::string::npos);
  std::filesystem::remove(file);
}

TEST_CASE("a baseline of one shard is refused") {
  Results shard = original();
  shard.run.shard = "2/3";
  CHECK_THROWS_WITH(make_baseline(shard), Contains("shard 2/3") && Contains("xposcheck merge"));
}

TEST_CASE("corrupted or foreign baseline files give errors naming the file") {
  const std::string good = format_baseline(make_baseline(made_results({made_record("a", 8, Outcome::pass, 1, 1)})));
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    const auto at = s.find(from);
    REQUIRE(at != std::string::npos);
    return s.replace(at, from.size(), to);
  };
  const std::pair<std::string, std::string> bad[] = {
      {"{\"schema\": ", "not valid JSON"},
      {"[1, 2, 3]", "not an xposcheck baseline"},
      {R"({"schema": "xposcheck-results", "schema_version": 1})", "this is a results file"},
      {replaced("xposcheck-baseline", "something-else"), "schema \"something-else\""},
      {replaced("\"schema_version\": 1", "\"schema_version\": 7"), "schema version 7 is not supported"},
      {replaced("\"tool_version\"", "\"tool\""), "missing \"tool_version\""},
      {replaced("\"outcome\":\"PASS\"", "\"outcome\":\"GREAT\""), "entry 1: unknown outcome \"GREAT\""},
      {replaced("\"dtype\":\"fp16\",\"outcome\"", "\"outcome\""), "entry 1: missing \"dtype\""},
      {replaced("\"max_seq_len\":8", "\"max_seq_len\":\"8\""), "envelope 1: \"max_seq_len\" has the wrong type"},
  };
  const auto file = scratch_file("bad-baseline.json");
  for (const auto& [text, problem] : bad) {
    std::ofstream(file, std::ios::binary) << text;
    INFO(text);
    CHECK_THROWS_WITH(read_baseline(file), Contains(file.string() + ": ") && Contains(problem));
  }
  std::filesystem::remove(file);
  CHECK_THROWS_WITH(read_baseline(file), Contains(file.string()) && Contains("cannot open"));
}

TEST_CASE("the diff of two baselines lists what changed, and only that") {
  const Baseline before = make_baseline(made_results({
      made_record("same", 8, Outcome::pass, 1, 1), made_record("worse", 16, Outcome::pass, 2, 1),
      made_record("breaks", 32, Outcome::pass, 1, 1), made_record("removed", 64, Outcome::pass, 1, 1),
      made_record("nudged", 128, Outcome::pass, 4, 2)}));
  const Baseline after = make_baseline(made_results({
      made_record("same", 8, Outcome::pass, 1, 1), made_record("worse", 16, Outcome::pass, 9, 1),
      made_record("breaks", 32, Outcome::tolerance, 50, 9), made_record("added", 100, Outcome::pass, 1, 1),
      made_record("nudged", 128, Outcome::pass, 4.5, 2)}));
  CHECK(diff_baselines(before, before).identical);
  CHECK(diff_baselines(before, before).lines.empty());
  const BaselineDiff d = diff_baselines(before, after);
  CHECK_FALSE(d.identical);
  const std::vector<std::string> expected = {
      "~ envelope cand fp16: M=0: N<=128 (all pass) -> M=0: N<=16 (N=32 TOLERANCE: breaks)",
      "~ cand breaks fp16: outcome PASS -> TOLERANCE",
      "~ cand breaks fp16: q_out max 1 -> 50 ulps (x50)",
      "~ cand breaks fp16: q_out rms 1 -> 9 ulps (x9)",
      "- cand removed fp16: PASS (removed)",
      "~ cand worse fp16: q_out max 2 -> 9 ulps (x4.5)",
      "+ cand added fp16: PASS (new)",
      "  1 entries with error changes within x2 or 1 ulp (not listed)",
  };
  CHECK(d.lines == expected);
}

TEST_CASE("drift evidence and envelopes are stored in the results file") {
  Results now = original();
  apply_baseline(now, make_baseline(original()));
  const auto file = scratch_file("with-drift.json");
  write_results(file, now);
  const Results back = read_results(file);
  REQUIRE(back.records.size() == now.records.size());
  REQUIRE(back.records[0].drift);
  CHECK(back.records[0].drift->verdict == DriftVerdict::unchanged);
  CHECK(back.records[0].drift->tensors.size() == 3);
  CHECK(back.records[0].drift->tensors[1].baseline_max == Approx(now.records[0].tensors[1].max_ulps).epsilon(1e-3));
  const auto json = nlohmann::json::parse(slurp(file));
  CHECK(json.at("envelopes").size() == 18);  // 6 memory lengths x 3 dtypes
  CHECK(json.at("envelopes").at(0).at("max_seq_len") == 256);
  // Files written without drift read as before.
  write_results(file, original());
  CHECK_FALSE(read_results(file).records[0].drift);
  std::filesystem::remove(file);
}
