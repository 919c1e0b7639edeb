// Packed batches through the harness: correct candidates, built-in and external (whole
// or by sequence), pass varlen.toml; positions that continue across the sequences are
// caught and named; one wrong sequence fails only itself; shapes are checked as a whole.
#include <catch2/catch.hpp>

#include <algorithm>

#include "external_test_support.hpp"
#include "harness_fixtures.hpp"
#include "xposcheck/harness/gate.hpp"
#include "xposcheck/harness/plugin_candidate.hpp"
#include "xposcheck/harness/sweep.hpp"

using namespace xposcheck;
using namespace xposcheck::test;
using Catch::Matchers::Contains;

namespace {

// Passes, or is beyond the envelope with the part the dtype holds passing.
bool passes(const Record& r) { return r.outcome == Outcome::pass || (r.outcome == Outcome::out_of_range && !fails_gate(r)); }

const Grid& varlen() {
  static const Grid grid = testing::shipped_grid("varlen.toml");
  return grid;
}

// A wrong q_out shape for a packed batch: one sequence's rows missing.
class DropsLastSequence : public Candidate {
 public:
  std::string name() const override { return "drops-last"; }
  std::string description() const override { return ""; }
  CandidateOutput run(const Case& c, DType dtype, const Tensor& q_in, const Tensor& k_in) override {
    CandidateOutput out = make_builtin("fp32-angles")->run(c, dtype, q_in, k_in);
    Shape shape = out.q_out.shape;
    shape[2] -= static_cast<std::size_t>(c.packed->sequences.back().seq_len);
    out.q_out = Tensor(shape);
    return out;
  }
};

}  // namespace

TEST_CASE("correct built-ins pass every packed batch of varlen.toml in every dtype") {
  REQUIRE(varlen().cases.size() == 20);
  for (const GridCase& gc : varlen().cases) {
    for (DType t : varlen().dtypes) {
      const Record r = testing::run_builtin("fp32-angles", gc, t);
      INFO(gc.id << " " << dtype_name(t) << ": " << r.message);
      CHECK(passes(r));
      REQUIRE(r.packed);
      CHECK(r.packed->sequences.size() == static_cast<std::size_t>(gc.params.packed->count()));
      CHECK(r.packed->failing.empty());
    }
  }
  // fp16 leaves its range in the long sequence alone.
  const GridCase& crossing = *std::find_if(varlen().cases.begin(), varlen().cases.end(),
                                           [](const GridCase& gc) { return gc.params.seq_len > 9000; });
  const Record r = testing::run_builtin("fp64-angles", crossing, DType::fp16);
  CHECK(r.outcome == Outcome::out_of_range);
  REQUIRE(r.packed);
  const auto out_of_range = std::count_if(r.packed->sequences.begin(), r.packed->sequences.end(),
                                          [](const SequenceVerdict& s) { return s.outcome == Outcome::out_of_range; });
  CHECK(out_of_range == 1);
}

TEST_CASE("positions continuing across the sequences fail every batch from sequence 1 and are named") {
  for (const GridCase& gc : varlen().cases) {
    const Record r = testing::run_builtin("packed-positions-continue", gc, DType::bf16);
    INFO(gc.id << ": " << r.message);
    CHECK(fails_gate(r));
    REQUIRE(r.packed);
    REQUIRE_FALSE(r.packed->failing.empty());
    CHECK(r.packed->failing.front() >= 1);
    CHECK(r.packed->sequences[0].outcome == Outcome::pass);
    REQUIRE(r.diagnosis);
    CHECK(r.diagnosis->verdict == "packed-positions-continue");
    CHECK_THAT(r.message, Contains("sequences fail; sequence"));
  }
}

TEST_CASE("a packed batch missing a sequence's rows is DIM_MISMATCH for the whole batch") {
  const Record r = evaluate_one(*std::make_unique<DropsLastSequence>(), varlen().cases[0], DType::fp32,
                                testing::default_tolerance(DType::fp32));
  CHECK(r.outcome == Outcome::dim_mismatch);
  CHECK_THAT(r.message, Contains("q_out shape"));
  CHECK_FALSE(r.packed);
}

TEST_CASE("a Python varlen candidate takes packed batches whole, and one wrong sequence fails only itself", "[external]") {
  Grid grid = varlen();
  grid.cases.resize(6);
  grid.dtypes = {DType::fp32, DType::bf16};
  for (const Record& r : sweep_one(grid, std::make_unique<SubprocessCandidate>(
                                             options_for("varlen", testing_command("varlen_rotary.py"))))) {
    INFO(r.case_id << " " << dtype_name(r.dtype) << ": " << r.message);
    CHECK(r.outcome == Outcome::pass);
  }
  // A sequence of one row at position 0 is not rotated at all: reversing it changes nothing.
  std::erase_if(grid.cases, [](const GridCase& gc) {
    const PackedSequence& s = gc.params.packed->sequences[1];
    return s.seq_len + s.mem_len == 1;
  });
  REQUIRE(grid.cases.size() >= 3);
  for (const Record& r : sweep_one(grid, std::make_unique<SubprocessCandidate>(options_for(
                                             "varlen", testing_command("varlen_rotary.py") + " --bug reverse-sequence=1")))) {
    INFO(r.case_id << " " << dtype_name(r.dtype) << ": " << r.message);
    CHECK(r.outcome == Outcome::tolerance);
    REQUIRE(r.packed);
    CHECK(r.packed->failing == std::vector<long>{1});
    for (const SequenceVerdict& s : r.packed->sequences) CHECK((s.outcome == Outcome::pass) == (s.index != 1));
    REQUIRE(r.diagnosis);
    CHECK(r.diagnosis->verdict == "reversed-rotation");
  }
  grid.cases.resize(2);
  for (const Record& r : sweep_one(grid, std::make_unique<SubprocessCandidate>(options_for(
                                             "varlen", testing_command("varlen_rotary.py") + " --bug continue")))) {
    INFO(r.case_id << ": " << r.message);
    REQUIRE(r.diagnosis);
    CHECK(r.diagnosis->verdict == "packed-positions-continue");
  }
}

TEST_CASE("a Python candidate without a varlen path gets one call per sequence and passes", "[external]") {
  Grid grid = varlen();
  grid.cases.resize(8);
  grid.cases.erase(grid.cases.begin(), grid.cases.begin() + 4);
  grid.dtypes = {DType::bf16};
  const std::vector<Record> records =
      sweep_one(grid, std::make_unique<SubprocessCandidate>(options_for("numpy", testing_command("numpy_reference.py"))));
  REQUIRE(records.size() == 4);
  for (const Record& r : records) {
    INFO(r.case_id << ": " << r.message);
    CHECK(r.outcome == Outcome::pass);
  }
}

TEST_CASE("a native plugin gets a packed batch as one call per sequence, in either ABI version", "[external][plugin]") {
  Grid grid = varlen();
  grid.cases.resize(6);
  grid.dtypes = {DType::fp32, DType::bf16};
  for (const char* name : {"rope", "rope_v1"}) {
    for (const Record& r : sweep_one(grid, example_plugin_candidate(name))) {
      INFO(name << " " << r.case_id << " " << dtype_name(r.dtype) << ": " << r.message);
      CHECK(r.outcome == Outcome::pass);
      CHECK(r.packed);
    }
  }
}

TEST_CASE("a plugin failing on a packed batch's sequence names that sequence", "[external][plugin][hostile]") {
  Hostile hostile("echo-case");  // fails every case, echoing the rows it was given
  const Grid grid = small_grid("head_dim = 16\npacked = \"3+2@7, 4\"\n");
  const auto records = sweep_one(grid, example_plugin_candidate("hostile"));
  REQUIRE(records.size() == 1);
  CHECK(records[0].outcome == Outcome::crash);
  // The first call is sequence 0 alone, a plain case: its 5 key rows, contiguous.
  CHECK_THAT(records[0].message, Contains("packed sequence 0 of 2: ") && Contains("rows 5 positions none"));
}
