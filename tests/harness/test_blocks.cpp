// judge_in_blocks: a case judged a block of rows at a time gets the verdict, the
// statistics and the diagnosis of the whole case, and a candidate failing on a block
// fails alone.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>

#include "block_fixtures.hpp"
#include "harness_fixtures.hpp"
#include "xposcheck/harness/blocks.hpp"
#include "xposcheck/harness/compare.hpp"

using namespace xposcheck;
using namespace xposcheck::testing;

namespace {

Record whole(Candidate& candidate, const GridCase& gc, DType t, const DiagnosisOptions& diagnosis = {}) {
  return evaluate_one(candidate, gc, t, default_tolerance(t), kSweepLogitRows, diagnosis);
}

// Whole and in blocks of `rows` rows, for each candidate.
void check_blocks_match(const GridCase& gc, DType t, const std::vector<std::string>& names, long rows,
                        const DiagnosisOptions& diagnosis = {}) {
  std::vector<std::unique_ptr<Candidate>> owned;
  std::vector<Candidate*> list;
  for (const auto& name : names) {
    owned.push_back(make_builtin(name));
    list.push_back(owned.back().get());
  }
  BlockOptions options;
  options.block_rows = rows;
  options.max_logit_rows = kSweepLogitRows;
  options.diagnosis = diagnosis;
  const std::vector<Record> blocks = judge_in_blocks(list, gc, t, default_tolerance(t), options);
  REQUIRE(blocks.size() == names.size());
  for (std::size_t i = 0; i < names.size(); ++i) {
    auto fresh = make_builtin(names[i]);
    check_same_record(blocks[i], whole(*fresh, gc, t, diagnosis));
  }
}

}  // namespace

TEST_CASE("blocks of rows give the whole case's verdict and statistics, correct and buggy candidates alike") {
  GridCase gc = grid_case(16, 37, 23);
  gc.params.batch = 2;
  gc.params.heads = 3;
  gc.params.rotary_dim = 12;
  gc.id = case_id(gc.params) + "-s1";
  const std::vector<std::string> names{"fp32-angles",       "angles-in-dtype",    "native-dtype",
                                       "positions-in-dtype", "swapped-qk-scale",   "reversed-rotation",
                                       "unsliced-scale",     "torchscale-centre",  "positions-from-zero",
                                       "odd-centre",         "centers-differ",     "scale-on-passthrough",
                                       "wrong-layout"};
  for (DType t : kAllDTypes) {
    for (long rows : {1L, 5L, 16L, 200L}) {
      INFO("block rows " << rows);
      check_blocks_match(gc, t, names, rows);
    }
  }
}

TEST_CASE("a convention judged in blocks is diagnosed, and accepted, as it is whole") {
  GridCase gc = grid_case(16, 1000, 300);
  gc.params.heads = 2;
  DiagnosisOptions accept;
  accept.accept_conventions = {"origin", "centre"};
  for (const DiagnosisOptions& diagnosis : {DiagnosisOptions{}, accept}) {
    INFO("accepted: " << diagnosis.accept_conventions.size());
    // 1000 and 1300 rows in blocks of 64: the worst rows fall anywhere in a block.
    check_blocks_match(gc, DType::bf16, {"torchscale-centre", "positions-from-zero", "reversed-rotation"}, 64,
                       diagnosis);
  }
  BlockOptions options;
  options.block_rows = 64;
  options.diagnosis = accept;
  auto candidate = make_builtin("torchscale-centre");
  Candidate* const one[] = {candidate.get()};
  const Record r = judge_in_blocks(one, gc, DType::bf16, default_tolerance(DType::bf16), options).front();
  REQUIRE(r.diagnosis);
  CHECK(r.diagnosis->kind == DiagnosisKind::convention);
  CHECK(r.diagnosis->accepted);
  CHECK(r.outcome == Outcome::pass);
  options.diagnosis.enabled = false;
  CHECK(judge_in_blocks(one, gc, DType::bf16, default_tolerance(DType::bf16), options).front().outcome ==
        Outcome::tolerance);
}

TEST_CASE("a candidate failing in blocks is diagnosed without outputs, as whole") {
  const GridCase gc = grid_case(16, 40, 20);
  auto candidate = make_builtin("unsliced-scale");
  Candidate* const one[] = {candidate.get()};
  BlockOptions options;
  options.block_rows = 7;
  const Record blocks = judge_in_blocks(one, gc, DType::fp32, default_tolerance(DType::fp32), options).front();
  auto fresh = make_builtin("unsliced-scale");
  const Record all = whole(*fresh, gc, DType::fp32);
  CHECK(all.outcome == Outcome::dim_mismatch);
  REQUIRE(all.diagnosis);
  check_same_record(blocks, all);
}

TEST_CASE("blocks of rows find the end of fp16's envelope where the whole case does") {
  GridCase gc = grid_case(8, 9001, 0);
  check_blocks_match(gc, DType::fp16, {"fp32-angles", "native-dtype"}, 1000);
  GridCase interleaved = grid_case(8, 300, 4100, true, Layout::interleaved);
  check_blocks_match(interleaved, DType::fp16, {"fp64-angles"}, 333);
}

TEST_CASE("seeded garbage fails in blocks as it does whole") {
  const GridCase gc = grid_case(8, 40, 20);
  auto garbage = make_builtin("random-garbage");
  const std::vector<Candidate*> list{garbage.get()};
  BlockOptions options;
  options.block_rows = 9;
  const auto records = judge_in_blocks(list, gc, DType::fp32, default_tolerance(DType::fp32), options);
  CHECK(records.at(0).outcome == Outcome::tolerance);
}

namespace {

// Correct until rows of block `fail_at` and beyond arrive, then throws or misshapes.
class FailsOnBlock : public Candidate {
 public:
  FailsOnBlock(long fail_at, bool misshape) : fail_at_(fail_at), misshape_(misshape) {}
  std::string name() const override { return misshape_ ? "misshapes-late" : "throws-late"; }
  std::string description() const override { return "fails on a late block"; }
  CandidateOutput run(const Case& c, DType t, const Tensor& q, const Tensor& k) override {
    return inner_->run(c, t, q, k);
  }
  bool rotates_rows() const override { return true; }
  Tensor rotate_rows(const Case& c, DType t, const Tensor& rows, bool query, long first) override {
    if (!query && first >= fail_at_) {
      if (!misshape_) throw std::runtime_error("device lost");
      return Tensor(Shape{rows.shape[0], rows.shape[1], rows.shape[2] - 1, rows.shape[3]});
    }
    return inner_->rotate_rows(c, t, rows, query, first);
  }

 private:
  std::unique_ptr<Candidate> inner_ = make_builtin("fp32-angles");
  long fail_at_;
  bool misshape_;
};

}  // namespace

TEST_CASE("a candidate failing on a block is a CRASH or DIM_MISMATCH of its own, and the others are judged") {
  const GridCase gc = grid_case(8, 40, 20);
  FailsOnBlock thrower(30, false), misshaper(30, true);
  auto good = make_builtin("fp32-angles");
  const std::vector<Candidate*> list{&thrower, good.get(), &misshaper};
  BlockOptions options;
  options.block_rows = 7;
  const auto records = judge_in_blocks(list, gc, DType::bf16, default_tolerance(DType::bf16), options);
  REQUIRE(records.size() == 3);
  CHECK(records[0].outcome == Outcome::crash);
  CHECK_THAT(records[0].message, Catch::Contains("device lost"));
  CHECK(records[1].outcome == Outcome::pass);
  CHECK(records[2].outcome == Outcome::dim_mismatch);
  CHECK_THAT(records[2].message, Catch::Contains("rows 35..41 of k_out came back shaped [1, 1, 6, 8], not [1, 1, 7, 8]"));
}

namespace {

// A change to the first pass's block of rows first.. of q (query) or k.
using FirstPassChange = std::function<void(const Case& c, bool query, long first, Tensor& out)>;

// Rotates like `first` until every row of the case has been asked once, like `then`
// after: outputs that change between the judging and a second read. `change` alters
// the first pass's blocks further.
class ChangesAfterOnePass : public Candidate {
 public:
  ChangesAfterOnePass(const char* first, const char* then, FirstPassChange change = {})
      : first_(make_builtin(first)), then_(make_builtin(then)), change_(std::move(change)) {}
  std::string name() const override { return "changes-after-one-pass"; }
  std::string description() const override { return "other outputs when asked again"; }
  CandidateOutput run(const Case& c, DType t, const Tensor& q, const Tensor& k) override {
    return first_->run(c, t, q, k);
  }
  bool rotates_rows() const override { return true; }
  Tensor rotate_rows(const Case& c, DType t, const Tensor& rows, bool query, long first) override {
    const bool again = seen_ >= c.seq_len + c.key_rows();
    seen_ += long(rows.shape[2]);
    Tensor out = (again ? then_ : first_)->rotate_rows(c, t, rows, query, first);
    if (change_ && !again) change_(c, query, first, out);
    return out;
  }

 private:
  std::unique_ptr<Candidate> first_, then_;
  FirstPassChange change_;
  long seen_ = 0;
};

// The first pass's query row 0 starts with a NaN.
void nan_first(const Case&, bool query, long first, Tensor& out) {
  if (query && first == 0) out.data[0] = std::nan("");
}

// The first pass's query row 1 one fp32 ulp up in its first feature: within tolerance,
// away from the worst element, the logits' rows and the diagnosis' sample.
void one_ulp_on_query_row_1(const Case& c, bool query, long first, Tensor& out) {
  if (!query || first > 1 || 1 >= first + long(out.shape[2])) return;
  double& x = out.data[std::size_t((1 - first) * c.head_dim)];
  x = double(std::nextafter(float(x), INFINITY));
}

}  // namespace

TEST_CASE("outputs that change after they were judged are not diagnosed, nor accepted") {
  // Judged: reversed rotation (a bug). Asked again: torchscale's centre, a convention
  // the options accept. The diagnosis must not describe the second outputs.
  const GridCase gc = grid_case(16, 300, 200);
  ChangesAfterOnePass candidate("reversed-rotation", "torchscale-centre");
  Candidate* const one[] = {&candidate};
  BlockOptions options;
  options.block_rows = 64;
  options.diagnosis.accept_conventions = {"origin", "centre"};
  const Record r = judge_in_blocks(one, gc, DType::bf16, default_tolerance(DType::bf16), options).front();
  CHECK(r.outcome == Outcome::tolerance);
  CHECK_FALSE(r.diagnosis);
  CHECK_THAT(r.message, Catch::Contains("not diagnosed: the candidate's outputs changed after they were judged"));

  // Judged: a NaN among convention outputs. Asked again: the convention alone, whose
  // acceptance would turn the NaN into the convention's envelope (OUT_OF_RANGE).
  ChangesAfterOnePass healed("torchscale-centre", "torchscale-centre", nan_first);
  Candidate* const other[] = {&healed};
  const Record n = judge_in_blocks(other, gc, DType::bf16, default_tolerance(DType::bf16), options).front();
  CHECK(n.outcome == Outcome::nonfinite);
  CHECK_FALSE(n.diagnosis);
}

TEST_CASE("a convention is judged again in its frame only on the outputs judged") {
  const GridCase gc = grid_case(16, 1000, 200);
  BlockOptions options;
  options.block_rows = 64;
  options.diagnosis.accept_conventions = {"centre"};
  auto steady = make_builtin("torchscale-centre");
  ChangesAfterOnePass changing("torchscale-centre", "torchscale-centre", one_ulp_on_query_row_1);
  for (Candidate* candidate : {steady.get(), static_cast<Candidate*>(&changing)}) {
    Candidate* const one[] = {candidate};
    const Record r = judge_in_blocks(one, gc, DType::fp32, default_tolerance(DType::fp32), options).front();
    INFO(candidate->name() << ": " << r.message);
    REQUIRE(r.diagnosis);
    if (candidate == steady.get()) {
      CHECK(r.outcome == Outcome::pass);
      CHECK(r.diagnosis->accepted);
      CHECK_THAT(r.message, Catch::Contains("every element judged there"));
    } else {
      CHECK(r.outcome == Outcome::tolerance);
      CHECK_FALSE(r.diagnosis->accepted);
      CHECK(r.diagnosis->kind == DiagnosisKind::bug);
      CHECK_THAT(r.diagnosis->evidence, Catch::Contains("the candidate's outputs changed after they were judged"));
    }
  }
}

TEST_CASE("cases over explicit positions, streams and packed batches are not judged in blocks") {
  GridCase gc = grid_case(8, 40, 20);
  CHECK(judged_in_blocks_possible(gc.params, Pass::forward));
  CHECK_FALSE(judged_in_blocks_possible(gc.params, Pass::backward));
  gc.params.stream = StreamShape{8, 4};
  CHECK_FALSE(judged_in_blocks_possible(gc.params, Pass::forward));
  auto candidate = make_builtin("fp32-angles");
  const std::vector<Candidate*> list{candidate.get()};
  CHECK_THROWS_AS(judge_in_blocks(list, gc, DType::fp32, default_tolerance(DType::fp32), {}), std::invalid_argument);
}

namespace {

std::vector<Record> sweep_records(const Grid& grid, const std::vector<std::string>& names, const SweepOptions& options,
                                  const std::string& file_name) {
  const auto file = std::filesystem::temp_directory_path() / ("xposcheck-test-blocks-" + file_name);
  std::filesystem::remove(file);
  std::filesystem::remove(file.string() + ".journal");
  std::vector<std::unique_ptr<Candidate>> candidates;
  for (const auto& name : names) candidates.push_back(make_builtin(name));
  RunInfo run;
  run.grid_fingerprint = grid.fingerprint;
  std::vector<std::string> order;
  for (const GridCase& gc : grid.cases) order.push_back(gc.id);
  ResultsStore store(file, run, order);
  run_sweep(grid, candidates, options, store);
  std::vector<Record> records = store.finish().records;
  std::filesystem::remove(file);
  return records;
}

}  // namespace

TEST_CASE("a sweep judges long cases in blocks for the candidates that rotate rows, the same records as whole") {
  const Grid grid = parse_grid(R"(
dtypes = ["fp32", "bf16", "fp16"]
passes = ["forward", "backward"]
[axes]
head_dim = 16
rotary_dim = 12
[[grid]]
seq_len = [40, 97]
mem_len = [0, 33]
xpos = [true, false]
)", "blocks");
  // stale-cache keeps state between cases (serial, whole); the others rotate rows.
  const std::vector<std::string> names{"fp32-angles", "native-dtype", "reversed-rotation", "stale-cache"};
  SweepOptions whole_options;
  SweepOptions block_options = whole_options;
  block_options.block_above_bytes = 0;
  block_options.block_rows = 9;
  const auto whole = sweep_records(grid, names, whole_options, "whole.json");
  const auto blocks = sweep_records(grid, names, block_options, "blocks.json");
  REQUIRE(whole.size() == blocks.size());
  REQUIRE(whole.size() == grid.cases.size() * 3 * (names.size() + 2));  // two have the backward pass
  for (std::size_t i = 0; i < whole.size(); ++i) {
    REQUIRE(whole[i].key() == blocks[i].key());
    check_same_record(blocks[i], whole[i]);
  }
}

TEST_CASE("the relative rule's yardstick is judged in blocks too") {
  GridCase gc = grid_case(16, 50, 20);
  Tolerance tol = default_tolerance(DType::bf16);
  tol.rule = ToleranceRule::relative;
  auto fp32 = make_builtin("fp32-angles");
  auto candidate = make_builtin("angles-in-dtype");
  BlockOptions options;
  options.block_rows = 6;
  Candidate* const yard[] = {fp32.get()};
  const Record yardstick = judge_in_blocks(yard, gc, DType::bf16, tol, options).front();
  Candidate* const one[] = {candidate.get()};
  const Record blocks = judge_in_blocks(one, gc, DType::bf16, tol, options, &yardstick).front();
  auto again = make_builtin("angles-in-dtype");
  const Record all = evaluate_one(*again, gc, DType::bf16, tol, kSweepLogitRows, {},
                                  [] { return make_builtin("fp32-angles"); });
  check_same_record(blocks, all);
}
