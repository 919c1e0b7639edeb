// The accuracy horizon: per-bin relative errors in the error curves, the horizon read
// from them per record and per candidate and dtype, its threshold, and its JSON.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>

#include "harness_fixtures.hpp"
#include "temp_dir.hpp"
#include "xposcheck/harness/compare.hpp"
#include "xposcheck/harness/horizon.hpp"
#include "xposcheck/reference/inputs.hpp"

using namespace xposcheck;
using testing::tensor;
using namespace xposcheck::testing;
using Catch::Matchers::Contains;

namespace {

// A case's golden outputs rounded to the dtype: a perfect candidate to perturb.
struct Exact {
  Case c;
  Golden golden;
  CandidateOutput out;
  explicit Exact(const Case& params) : c(params) {
    const Inputs inputs = generate_inputs(c, 3, DType::fp32);
    golden = golden_fast(c, inputs.q, inputs.k);
    out.q_out = golden.q_out;
    out.k_out = golden.k_out;
    for (Tensor* t : {&out.q_out, &out.k_out}) {
      for (double& v : t->data) v = round_to(DType::fp32, v);
    }
    out.q_dtype = out.k_dtype = "fp32";
  }
  Record compare() const {
    Record r;
    compare_outputs(c, DType::fp32, golden, *shared_tables(c), out, default_tolerance(DType::fp32), r);
    return r;
  }
  // Moves feature a of pair j in `row` by `rel` times the golden pair's magnitude.
  void perturb(Tensor& t, const Tensor& g, long row, long j, double rel) {
    const double* want = g.row(static_cast<std::size_t>(row));
    const double magnitude = std::hypot(want[c.pair_a(j)], want[c.pair_b(j)]);
    t.data[static_cast<std::size_t>(row * c.head_dim + c.pair_a(j))] = want[c.pair_a(j)] + rel * magnitude;
  }
};

Case case_of(long n, long m) {
  Case c;
  c.head_dim = 8;
  c.seq_len = n;
  c.mem_len = m;
  return c;
}

PositionBin bin(long first, long last, double max_rel) {
  PositionBin b{first, last, 1, 1, 4, 0.25};
  b.max_rel = max_rel;
  return b;
}

TensorStats curve_of(const std::string& name, std::vector<PositionBin> bins) {
  TensorStats t;
  t.name = name;
  t.compared = true;
  t.curve = std::move(bins);
  return t;
}

}  // namespace

TEST_CASE("each curve bin holds its largest relative error, exactly") {
  Exact e(case_of(96, 0));
  // A known error at position 30 of q_out (bins of 2 positions): 1% of the pair.
  e.perturb(e.out.q_out, e.golden.q_out, 30, 1, 0.01);
  // Errors that shrink and then grow along k_out, so that rows skip the exact division
  // only when they cannot raise their own bin's maximum.
  for (long row = 0; row < 96; ++row) e.perturb(e.out.k_out, e.golden.k_out, row, row % 4, 1e-4 * (1 + std::abs(row - 48)));
  const Record r = e.compare();
  const TensorStats& q = tensor(r, "q_out");
  REQUIRE(q.curve.size() == 48);
  for (const PositionBin& b : q.curve) {
    INFO("bin " << b.first << ".." << b.last);
    if (b.first <= 30 && 30 <= b.last) CHECK(b.max_rel == Approx(0.01).epsilon(1e-6));
    else CHECK(b.max_rel < 0x1p-23);  // the rounding to fp32 alone
  }
  for (const PositionBin& b : tensor(r, "k_out").curve) {
    const long far = std::max(std::abs(b.first - 48), std::abs(b.last - 48));
    CHECK(b.max_rel == Approx(1e-4 * (1 + far)).epsilon(1e-6));
  }
  // The tensor's maximum is its largest bin's.
  CHECK(q.max_rel == Approx(0.01).epsilon(1e-6));
}

TEST_CASE("a record's horizon is the first bin over the threshold, outward from position 0") {
  Exact e(case_of(96, 0));
  e.perturb(e.out.q_out, e.golden.q_out, 30, 1, 0.01);
  e.perturb(e.out.k_out, e.golden.k_out, 70, 0, 0.02);
  const Record r = e.compare();
  const auto h = record_horizon(r.tensors, kHorizonThreshold);
  REQUIRE(h);
  REQUIRE(h->found());
  CHECK(*h->near == 30);
  CHECK(*h->far == 31);
  CHECK(h->tensor == "q_out");
  CHECK(h->reach == 95);
  // Above both errors: no horizon, and the positions it holds up to.
  const auto none = record_horizon(r.tensors, 0.05);
  REQUIRE(none);
  CHECK_FALSE(none->found());
  CHECK(none->reach == 95);
  // Between them: k_out's bin.
  const auto k = record_horizon(r.tensors, 0.015);
  CHECK(k->tensor == "k_out");
  CHECK(*k->near == 70);
}

TEST_CASE("the horizon from curves: first bin, odd boundaries, memory, logits left out") {
  SECTION("the first bin, across position 0") {
    const auto h = record_horizon({curve_of("k_out", {bin(-7, 2, 0.5), bin(3, 12, 0)})}, kHorizonThreshold);
    CHECK(*h->near == 0);
    CHECK(*h->far == 7);
  }
  SECTION("odd bin boundaries: the nearest |p| of the bin") {
    const auto h = record_horizon({curve_of("q_out", {bin(0, 20, 0.001), bin(21, 41, 0.00390625),
                                                      bin(42, 62, 0.0039063), bin(63, 84, 0.9)})},
                                  kHorizonThreshold);
    // 2^-8 itself does not exceed 2^-8.
    CHECK(*h->near == 42);
    CHECK(*h->far == 62);
    CHECK(h->reach == 84);
  }
  SECTION("memory keys: the bin nearest 0 on either side") {
    const auto h = record_horizon({curve_of("q_out", {bin(0, 9, 0), bin(10, 19, 0.1)}),
                                   curve_of("k_out", {bin(-30, -16, 0.1), bin(-15, -6, 0.1), bin(-5, 4, 0)})},
                                  kHorizonThreshold);
    CHECK(*h->near == 6);
    CHECK(*h->far == 15);
    CHECK(h->tensor == "k_out");
    CHECK(h->reach == 30);
  }
  SECTION("logits and uncompared tensors do not count; no curve, no horizon") {
    TensorStats skipped = curve_of("k_out", {bin(0, 5, 1)});
    skipped.compared = false;
    CHECK_FALSE(record_horizon({curve_of("logits", {bin(0, 5, 1)}), skipped}, kHorizonThreshold));
    const auto h = record_horizon({curve_of("logits", {bin(0, 5, 1)}), curve_of("q_out", {bin(0, 5, 0)})},
                                  kHorizonThreshold);
    REQUIRE(h);
    CHECK_FALSE(h->found());
  }
}

TEST_CASE("per candidate and dtype: the tightest horizon over the records, or the reach") {
  Results results;
  auto add = [&](const std::string& candidate, DType t, const std::string& id, std::vector<PositionBin> bins) {
    Record r;
    r.candidate = candidate;
    r.case_id = id;
    r.dtype = t;
    r.horizon = record_horizon({curve_of("q_out", std::move(bins))}, kHorizonThreshold);
    results.records.push_back(r);
  };
  add("a", DType::bf16, "long", {bin(0, 1365, 0.1)});
  add("a", DType::bf16, "short", {bin(0, 255, 0), bin(256, 277, 0.1)});
  add("a", DType::fp32, "long", {bin(0, 65535, 0.001)});
  const auto h = compute_horizons(results);
  REQUIRE(h.size() == 2);
  CHECK(h[0].dtype == DType::fp32);
  CHECK(describe_horizon(h[0]) == "horizon a fp32: no horizon within the grid (error <= 2^-8 up to position 65535)");
  CHECK(h[1].case_id == "short");
  CHECK(describe_horizon(h[1]) ==
        "horizon a bf16: error > 2^-8 beyond position ~256 (first exceeded at |p| 256..277 of q_out in short)");
}

TEST_CASE("the horizon threshold: 2^-k or a number above 0 and at most 1, anything else refused") {
  CHECK(*parse_threshold("2^-8").value == 0x1p-8);
  CHECK(*parse_threshold("2^-10.5").value == Approx(std::exp2(-10.5)));
  CHECK(*parse_threshold("0.001").value == 0.001);
  CHECK(*parse_threshold("1").value == 1);
  for (const char* bad : {"0", "-0.1", "2", "2^1", "nan", "inf", "2^", "", "x", "2^-8x", "1e-400"}) {
    INFO(bad);
    const ParsedThreshold t = parse_threshold(bad);
    CHECK_FALSE(t.value);
    CHECK_THAT(t.error, Contains("want a finite number in (0, 1]"));
  }
  CHECK(threshold_text(kHorizonThreshold) == "2^-8");
  CHECK(threshold_text(0.001) == "0.001");
}

TEST_CASE("horizons and per-bin relative errors survive the results file, and older files still read") {
  const TempDir dir("horizon-json");
  Results results;
  results.run.horizon_threshold = kHorizonThreshold;
  Record r = run_builtin("angles-in-dtype", grid_case(16, 300, 20), DType::bf16);
  r.horizon = record_horizon(r.tensors, kHorizonThreshold);
  REQUIRE(r.horizon->found());
  results.records.push_back(r);
  write_results(dir.path / "r.json", results);
  const Results read = read_results(dir.path / "r.json");
  CHECK(read.run.horizon_threshold == kHorizonThreshold);
  REQUIRE(read.records.size() == 1);
  CHECK(read.records[0].horizon == r.horizon);
  const auto& bins = read.records[0].tensors[0].curve;
  REQUIRE(bins.size() == r.tensors[0].curve.size());
  for (std::size_t i = 0; i < bins.size(); ++i) CHECK(bins[i].max_rel == Approx(r.tensors[0].curve[i].max_rel).epsilon(1e-3));
  // The top-level summary states what the console does.
  std::ifstream in(dir.path / "r.json");
  const std::string text(std::istreambuf_iterator<char>(in), {});
  CHECK_THAT(text, Contains("\"horizons\"") && Contains("error > 2^-8 beyond position ~"));

  // A file of an older version: six entries per bin, no horizon.
  Results old;
  Record plain = run_builtin("fp32-angles", grid_case(8, 7, 0), DType::fp32);
  old.records.push_back(plain);
  write_results(dir.path / "old.json", old);
  std::ifstream old_in(dir.path / "old.json");
  std::string old_text(std::istreambuf_iterator<char>(old_in), {});
  std::string stripped;
  // Drop the seventh entry of every bin: ",<number>]" after the sixth.
  for (std::size_t at = 0; at < old_text.size();) {
    const std::size_t curve = old_text.find("\"curve\":[", at);
    if (curve == std::string::npos) { stripped += old_text.substr(at); break; }
    const std::size_t end = old_text.find("]]", curve);
    std::string bins_text = old_text.substr(curve, end + 2 - curve);
    for (std::size_t close = bins_text.find(']'); close != std::string::npos && close + 1 < bins_text.size();
         close = bins_text.find(']', close + 1)) {
      const std::size_t comma = bins_text.rfind(',', close);
      bins_text.erase(comma, close - comma);
      close = comma;
    }
    stripped += old_text.substr(at, curve - at) + bins_text;
    at = end + 2;
  }
  std::ofstream(dir.path / "old.json", std::ios::trunc) << stripped;
  const Results back = read_results(dir.path / "old.json");
  REQUIRE(back.records.size() == 1);
  CHECK_FALSE(back.records[0].horizon);
  CHECK(back.records[0].tensors[0].curve.size() == plain.tensors[0].curve.size());
  CHECK(back.records[0].tensors[0].curve[0].max_rel == 0);
}

TEST_CASE("a malformed curve bin or horizon is refused, naming it") {
  const TempDir dir("horizon-bad");
  Results results;
  Record r = run_builtin("fp32-angles", grid_case(8, 7, 0), DType::fp32);
  r.horizon = record_horizon(r.tensors, kHorizonThreshold);
  results.records.push_back(r);
  write_results(dir.path / "r.json", results);
  std::ifstream in(dir.path / "r.json");
  const std::string text(std::istreambuf_iterator<char>(in), {});
  auto refused = [&](const std::string& from, const std::string& to) {
    std::string broken = text;
    const auto at = broken.find(from);
    REQUIRE(at != std::string::npos);
    broken.replace(at, from.size(), to);
    std::ofstream(dir.path / "bad.json", std::ios::trunc) << broken;
    try {
      read_results(dir.path / "bad.json");
    } catch (const ResultsError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  CHECK_THAT(refused("\"curve\":[[", "\"curve\":[[\"x\","), Contains("curve bin 0"));
  // The record's own horizon (compact, keys in order), not the file's summary.
  CHECK_THAT(refused("\"tensor\":\"\",\"threshold\":", "\"tensor\":\"\",\"threshold\":-"), Contains("'threshold'"));
  CHECK_THAT(refused("\"near\":null,\"reach\":", "\"near\":null,\"reach\":-"), Contains("'reach'"));
  CHECK_THAT(refused("\"far\":null", "\"far\":3"), Contains("'near' and 'far'"));
}

TEST_CASE("the results store reads every horizon at its run's threshold, resumed records too") {
  const TempDir dir("horizon-store");
  const auto file = dir.path / "r.json";
  const Record wrong = run_builtin("wrong-layout", grid_case(8, 7, 0), DType::fp32);
  RunInfo run;
  run.horizon_threshold = 0.5;
  {
    ResultsStore store(file, run, {wrong.case_id});
    store.add(wrong);
    const Results first = store.finish();
    REQUIRE(first.records[0].horizon);
    CHECK(first.records[0].horizon->threshold == 0.5);
  }
  // Resumed under another threshold: the stored curves are read again at this one.
  run.horizon_threshold = 0x1p-20;
  ResultsStore store(file, run, {wrong.case_id});
  store.resume();
  const Results again = store.finish();
  REQUIRE(again.records.size() == 1);
  REQUIRE(again.records[0].horizon);
  CHECK(again.records[0].horizon->threshold == 0x1p-20);
  CHECK(again.records[0].horizon->found());
  CHECK(again.records[0].outcome == wrong.outcome);
}

TEST_CASE("a record accepted under a convention has no horizon, and the summary says it was left out") {
  // Its curves are errors against SPEC's frame, which an accepted convention does not follow.
  auto record = [](const std::string& id, double max_rel, bool accepted) {
    Record r;
    r.candidate = "css";
    r.case_id = id;
    r.dtype = DType::fp32;
    r.tensors = {curve_of("k_out", {bin(-100, 6, max_rel)})};
    if (accepted) {
      r.outcome = Outcome::pass;
      r.diagnosis.emplace();
      r.diagnosis->kind = DiagnosisKind::convention;
      r.diagnosis->convention = "origin";
      r.diagnosis->accepted = true;
    }
    r.horizon = record_horizon(r, kHorizonThreshold);
    return r;
  };
  const Record accepted = record("M100", 2.0, true), plain = record("M0", 0.001, false);
  CHECK_FALSE(accepted.horizon);
  REQUIRE(plain.horizon);
  // Not accepted (a convention named, the record failing): its curves count.
  Record named = accepted;
  named.diagnosis->accepted = false;
  CHECK(record_horizon(named, kHorizonThreshold));

  Results results;
  results.run.horizon_threshold = kHorizonThreshold;
  results.records = {accepted, plain, accepted};
  auto h = compute_horizons(results);
  REQUIRE(h.size() == 1);
  CHECK(h[0].read_from == 1);
  CHECK(h[0].convention_left_out == 2);
  CHECK(describe_horizon(h[0]) ==
        "horizon css fp32: no horizon within the grid (error <= 2^-8 up to position 100); 2 records accepted "
        "under a convention left out (their curves are in SPEC's frame, which they do not follow)");
  results.records = {accepted};
  h = compute_horizons(results);
  REQUIRE(h.size() == 1);
  CHECK(describe_horizon(h[0]) ==
        "horizon css fp32: no record to read it from: 1 record accepted under a convention left out (their "
        "curves are in SPEC's frame, which they do not follow)");
  // A file without horizons (threshold 0) states none, accepted records or not.
  results.run.horizon_threshold = 0;
  CHECK(compute_horizons(results).empty());
  // A file of an earlier version may have kept an accepted record's horizon: still left out.
  results.run.horizon_threshold = kHorizonThreshold;
  Record kept = accepted;
  kept.horizon = record_horizon(kept.tensors, kHorizonThreshold);
  REQUIRE(kept.horizon);
  results.records = {kept, plain};
  h = compute_horizons(results);
  REQUIRE(h.size() == 1);
  CHECK(h[0].read_from == 1);
  CHECK(h[0].convention_left_out == 1);
  CHECK_FALSE(h[0].nearest);
}
