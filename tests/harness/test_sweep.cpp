// The sweep: deterministic results, crash isolation, incremental journaled results
// and resumption.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "harness_fixtures.hpp"
#include "xposcheck/reference/inputs.hpp"
#include "xposcheck/reference/threads.hpp"

using namespace xposcheck;
using namespace xposcheck::testing;
namespace fs = std::filesystem;

namespace {

fs::path temp_file(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("xposcheck-test-" + name);
  fs::remove(p);
  fs::remove(p.string() + ".journal");
  return p;
}

RunInfo run_info(const std::string& fingerprint) {
  RunInfo run;
  run.grid_fingerprint = fingerprint;
  return run;
}

std::vector<std::string> order_of(const Grid& g) {
  std::vector<std::string> order;
  for (const GridCase& gc : g.cases) order.push_back(gc.id);
  return order;
}

// Counts calls; throws on the case named `poison`.
class CountingCandidate : public Candidate {
 public:
  explicit CountingCandidate(std::string poison = "") : poison_(std::move(poison)) {}
  std::string name() const override { return "counting"; }
  std::string description() const override { return "fp64-angles, counting its calls"; }
  CandidateOutput run(const Case& c, DType t, const Tensor& q, const Tensor& k) override {
    ++calls;
    if (!poison_.empty() && case_id(c) + "-s1" == poison_) throw std::runtime_error("boom: poisoned case");
    return make_builtin("fp64-angles")->run(c, t, q, k);
  }
  std::atomic<int> calls{0};

 private:
  std::string poison_;
};

Results run(const Grid& grid, std::vector<std::unique_ptr<Candidate>>& cands, const fs::path& file,
            bool resume = false, unsigned jobs = 2) {
  ResultsStore store(file, run_info(grid.fingerprint), order_of(grid));
  if (resume) store.resume();
  SweepOptions options;
  options.jobs = jobs;
  run_sweep(grid, cands, options, store);
  return store.finish();
}

std::string without_timings(const fs::path& file) {
  std::ifstream in(file);
  std::string text, line;
  while (std::getline(in, line)) {
    const bool timing = line.find("_s\":") != std::string::npos ||
                        line.find("\"seconds\":") != std::string::npos ||
                        line.find("started_at") != std::string::npos;
    if (!timing)
      text += line + "\n";
  }
  return text;
}

}  // namespace

TEST_CASE("the same sweep twice gives identical results apart from timings") {
  const Grid grid = shipped_grid("smoke.toml");
  std::string first, second;
  for (std::string* text : {&first, &second}) {
    std::vector<std::unique_ptr<Candidate>> cands;
    for (const char* n : {"fp32-angles", "native-dtype", "stale-cache", "wrong-layout"})
      cands.push_back(make_builtin(n));
    const fs::path file = temp_file("determinism.json");
    run(grid, cands, file, false, text == &first ? 1 : 2);
    *text = without_timings(file);
  }
  CHECK(first.size() > 10000);
  CHECK(first == second);
}

// Batched like an external candidate; checks that every job's inputs are the ones
// drawn for its own case and dtype alone, whatever else shared the draws.
class InputCheckingBatches : public Candidate {
 public:
  InputCheckingBatches(const Grid& grid, std::size_t batch) : grid_(grid), batch_(batch) {}
  std::string name() const override { return "input-checking"; }
  std::string description() const override { return "fp64-angles in batches, checking its inputs"; }
  Execution execution() const override { return Execution::batched; }
  std::size_t batch_size() const override { return batch_; }
  CandidateOutput run(const Case& c, DType t, const Tensor& q, const Tensor& k) override {
    return make_builtin("fp64-angles")->run(c, t, q, k);
  }
  std::vector<Attempt> run_batch(std::span<const Job> jobs) override {
    for (const Job& job : jobs) {
      const auto gc = std::find_if(grid_.cases.begin(), grid_.cases.end(),
                                   [&](const GridCase& g) { return &g.params == job.params; });
      REQUIRE(gc != grid_.cases.end());
      const Inputs own = generate_inputs(gc->params, gc->seed, job.dtype);
      ++jobs_seen;
      if (own.q.data != job.q_in->data || own.k.data != job.k_in->data) ++wrong_inputs;
    }
    return Candidate::run_batch(jobs);
  }
  int jobs_seen = 0, wrong_inputs = 0;

 private:
  const Grid& grid_;
  std::size_t batch_;
};

TEST_CASE("batched candidates get each dtype's own inputs though a case's are drawn once") {
  const Grid grid = shipped_grid("smoke.toml");
  // Batches of 2 and 7 split some cases' dtypes across batches, 64 holds them together.
  for (std::size_t batch : {std::size_t(2), std::size_t(7), std::size_t(64)}) {
    INFO("batch size " << batch);
    std::vector<std::unique_ptr<Candidate>> cands;
    cands.push_back(std::make_unique<InputCheckingBatches>(grid, batch));
    const auto& checking = static_cast<const InputCheckingBatches&>(*cands[0]);
    const Results results = run(grid, cands, temp_file("batched-inputs.json"));
    CHECK(checking.jobs_seen >= static_cast<int>(grid.cases.size() * 3));
    CHECK(checking.wrong_inputs == 0);
    for (const Record& r : results.records) CHECK(r.outcome == Outcome::pass);
  }
}

// Notes the thread budget its calls run under (that of the verification's own work
// on the same thread), batched like an external candidate or called in parallel.
class BudgetNoting : public Candidate {
 public:
  explicit BudgetNoting(bool batched) : batched_(batched) {}
  std::string name() const override { return batched_ ? "budget-noting-batches" : "budget-noting"; }
  std::string description() const override { return "fp64-angles, noting its thread budget"; }
  Execution execution() const override { return batched_ ? Execution::batched : Execution::parallel; }
  std::size_t batch_size() const override { return 3; }
  CandidateOutput run(const Case& c, DType t, const Tensor& q, const Tensor& k) override {
    if (!batched_) note();
    return make_builtin("fp64-angles")->run(c, t, q, k);
  }
  std::vector<Attempt> run_batch(std::span<const Job> jobs) override {
    note();
    return Candidate::run_batch(jobs);
  }
  std::set<unsigned> budgets() {
    std::lock_guard lock(mutex_);
    return budgets_;
  }

 private:
  void note() {
    std::lock_guard lock(mutex_);
    budgets_.insert(threads_here());
  }
  bool batched_;
  std::mutex mutex_;
  std::set<unsigned> budgets_;
};

TEST_CASE("the sweep keeps to its --jobs budget, in its workers and nested loops alike") {
  const Grid grid = shipped_grid("smoke.toml");
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  REQUIRE(grid.cases.size() * grid.dtypes.size() >= 2 * cores);  // every worker finds work
  for (unsigned jobs : {0u, 1u, 3u}) {
    INFO("--jobs " << jobs << " on " << cores << " cores");
    const unsigned budget = jobs ? std::min(jobs, cores) : cores;
    std::vector<std::unique_ptr<Candidate>> cands;
    cands.push_back(std::make_unique<BudgetNoting>(false));
    cands.push_back(std::make_unique<BudgetNoting>(true));
    auto& parallel = static_cast<BudgetNoting&>(*cands[0]);
    auto& batched = static_cast<BudgetNoting&>(*cands[1]);
    const Results results = run(grid, cands, temp_file("budget.json"), false, jobs);
    // Cases in parallel take a thread each and their own loops run serially; batches
    // run one after another, with the budget the sweep was given.
    CHECK(parallel.budgets() == std::set{1u});
    CHECK(batched.budgets() == std::set{budget});
    CHECK(results.records.size() == 2 * grid.cases.size() * grid.dtypes.size());
    for (const Record& r : results.records) CHECK(r.outcome == Outcome::pass);
  }
}

TEST_CASE("a candidate that throws is a CRASH for that case and the sweep goes on") {
  const Grid grid = shipped_grid("smoke.toml");
  const std::string poison = grid.cases[3].id;
  std::vector<std::unique_ptr<Candidate>> cands;
  cands.push_back(std::make_unique<CountingCandidate>(poison));
  const Results results = run(grid, cands, temp_file("crash.json"));
  REQUIRE(results.records.size() == grid.cases.size() * grid.dtypes.size());
  for (const Record& r : results.records) {
    if (r.case_id == poison) {
      CHECK(r.outcome == Outcome::crash);
      CHECK(r.message == "boom: poisoned case");
    } else {
      CHECK(r.outcome == Outcome::pass);
    }
  }
}

TEST_CASE("an interrupted sweep resumes where it stopped") {
  const Grid grid = shipped_grid("smoke.toml");
  const fs::path file = temp_file("resume.json");
  Grid half = grid;
  half.cases.resize(grid.cases.size() / 2);
  {
    // The first half finishes, then the process "dies": no finish(), only the journal.
    std::vector<std::unique_ptr<Candidate>> cands;
    cands.push_back(make_builtin("fp32-angles"));
    ResultsStore store(file, run_info(grid.fingerprint), order_of(grid));
    run_sweep(half, cands, SweepOptions{}, store);
  }
  REQUIRE(fs::exists(file.string() + ".journal"));
  // A record cut short by the interruption is tolerated and simply run again.
  { std::ofstream(file.string() + ".journal", std::ios::app) << "{\"candidate\": \"fp32-an"; }

  auto counting = std::make_unique<CountingCandidate>();
  CountingCandidate* counter = counting.get();
  std::vector<std::unique_ptr<Candidate>> cands;
  cands.push_back(make_builtin("fp32-angles"));
  cands.push_back(std::move(counting));
  const Results results = run(grid, cands, file, true);
  CHECK(results.records.size() == 2 * grid.cases.size() * grid.dtypes.size());
  CHECK(counter->calls == static_cast<int>(grid.cases.size() * grid.dtypes.size()));
  CHECK_FALSE(fs::exists(file.string() + ".journal"));

  // Resuming a finished sweep runs nothing.
  auto again = std::make_unique<CountingCandidate>();
  CountingCandidate* again_counter = again.get();
  std::vector<std::unique_ptr<Candidate>> same;
  same.push_back(std::move(again));
  run(grid, same, file, true);
  CHECK(again_counter->calls == 0);
}

TEST_CASE("resuming into results of another grid is refused") {
  const Grid grid = shipped_grid("smoke.toml");
  const fs::path file = temp_file("other-grid.json");
  std::vector<std::unique_ptr<Candidate>> cands;
  cands.push_back(make_builtin("fp32-angles"));
  Grid small = grid;
  small.cases.resize(2);
  run(small, cands, file);
  ResultsStore store(file, run_info("something-else"), order_of(grid));
  CHECK_THROWS_WITH(store.resume(), Catch::Contains("cannot resume") && Catch::Contains("another grid"));
}

TEST_CASE("results files round-trip and corrupt ones are refused by name") {
  const Grid grid = shipped_grid("regressions/x-transformers-xpos-mems.toml");
  const fs::path file = temp_file("roundtrip.json");
  std::vector<std::unique_ptr<Candidate>> cands;
  cands.push_back(make_builtin("unsliced-scale"));
  cands.push_back(make_builtin("fp32-angles"));
  const Results written = run(grid, cands, file);
  const Results read = read_results(file);
  REQUIRE(read.records.size() == written.records.size());
  for (std::size_t i = 0; i < read.records.size(); ++i) {
    const Record &a = written.records[i], &b = read.records[i];
    CHECK(a.key() == b.key());
    CHECK(a.outcome == b.outcome);
    CHECK(a.message == b.message);
    CHECK(a.max_ratio == b.max_ratio);
    CHECK(a.tensors.size() == b.tensors.size());
    CHECK(case_id(a.params) == case_id(b.params));
  }
  const fs::path bad = temp_file("corrupt.json");
  std::ofstream(bad) << "{\"schema\": \"xposcheck-results\", \"schema_version\": 1, \"run\": {";
  CHECK_THROWS_WITH(read_results(bad), Catch::Contains(bad.string()) && Catch::Contains("not valid JSON"));
  std::ofstream(bad, std::ios::trunc) << "{\"hello\": 1}";
  CHECK_THROWS_WITH(read_results(bad), Catch::Contains("not an xposcheck results file"));
  std::ofstream(bad, std::ios::trunc) << "{\"schema\": \"xposcheck-results\", \"schema_version\": 99}";
  CHECK_THROWS_WITH(read_results(bad), Catch::Contains("version 99"));
  CHECK_THROWS_WITH(read_results(temp_file("missing.json")), Catch::Contains("cannot open"));
}

TEST_CASE("while a long case runs, ticks report it and its stage") {
  const Grid grid = parse_grid("name = \"t\"\ndtypes = [\"fp32\"]\n[axes]\nhead_dim = 64\nseq_len = 6000\nmem_len = 2000\n", "t");
  std::vector<std::unique_ptr<Candidate>> cands;
  cands.push_back(make_builtin("fp64-angles"));
  const fs::path file = temp_file("ticks.json");
  std::vector<std::string> seen;
  std::size_t records = 0;
  SweepOptions options;
  options.jobs = 1;
  options.progress_tick_s = 0.01;
  RunInfo run;
  run.candidates = {"fp64-angles"};
  ResultsStore store(file, run, {grid.cases[0].id});
  run_sweep(grid, cands, options, store, [&](const Progress& p) {
    if (p.last) ++records;
    for (const std::string& r : p.running) seen.push_back(r);
  });
  CHECK(records == 1);
  REQUIRE_FALSE(seen.empty());
  CHECK_THAT(seen.front(), Catch::Contains("D64-N6000-M2000-s1 fp32: "));
  const bool staged = std::any_of(seen.begin(), seen.end(), [](const std::string& s) {
    return s.find(": inputs and golden outputs, ") != std::string::npos || s.find(": fp64-angles, ") != std::string::npos;
  });
  CHECK(staged);
}
