// External candidates through the work-directory protocol and the Python helper: one
// deliberately broken candidate per failure path (python/testing/), each with the
// outcome and evidence it must get, and the sweep going on after each.
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <cmath>
#include <cstring>
#include <numeric>
#include <optional>
#include <iterator>
#include <map>
#include <set>
#include <thread>
#include <chrono>
#include <variant>

#include <catch2/catch.hpp>

#include "external_test_support.hpp"
#include "../../harness/src/external/protocol.hpp"  // private to the harness: the defaults
#include "xposcheck/harness/process.hpp"
#include "xposcheck/reference/inputs.hpp"

using namespace xposcheck;
using namespace xposcheck::test;
using Catch::Matchers::Contains;

namespace {

// D = 16 with and without memory, both layouts: 8 cases.
const char* kSmallAxes =
    "head_dim = 16\nseq_len = [1, 7]\nmem_len = [0, 3]\nlayout = [\"half\", \"interleaved\"]\n";
const char* kEveryDType = "[\"fp32\", \"bf16\", \"fp16\"]";

std::unique_ptr<SubprocessCandidate> testing_candidate(const std::string& script,
                                                       std::size_t batch = 8,
                                                       const std::string& env = "") {
  return std::make_unique<SubprocessCandidate>(
      options_for(script, testing_command(script, env), batch));
}

// A small fp32 grid with its inputs drawn, and one-job batches over its cases.
struct Fp32Cases {
  explicit Fp32Cases(const std::string& axes) : grid(small_grid(axes)) {
    for (const GridCase& gc : grid.cases) inputs.push_back(generate_inputs(gc.params, gc.seed, DType::fp32));
  }
  Job job_of(std::size_t i) const { return {&grid.cases[i].params, DType::fp32, &inputs[i].q, &inputs[i].k}; }
  std::vector<Job> job(std::size_t i) const { return {job_of(i)}; }
  std::vector<Job> all() const {
    std::vector<Job> jobs;
    for (std::size_t i = 0; i < grid.cases.size(); ++i) jobs.push_back(job_of(i));
    return jobs;
  }
  Grid grid;
  std::vector<Inputs> inputs;
};

// Lines a testing candidate appended to a file (0 before it exists).
long lines_in(const fs::path& file) {
  std::ifstream in(file);
  return static_cast<long>(std::count(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>(), '\n'));
}

// sleepy.py sleeping `sleep_s` per case, appending a line per case to `order` and one
// per process start to `starts` where those are given.
SubprocessOptions sleepy_options(const std::string& name, const std::string& sleep_s, const fs::path& order = {},
                                 const fs::path& starts = {}) {
  std::string env = "XPOSCHECK_TEST_SLEEP_S=" + sleep_s;
  if (!order.empty()) env += " XPOSCHECK_TEST_ORDER_FILE='" + order.string() + "'";
  if (!starts.empty()) env += " XPOSCHECK_TEST_STARTS_FILE='" + starts.string() + "'";
  return options_for(name, testing_command("sleepy.py", env));
}

// Waits (up to 20 s) until a testing candidate has appended a line to `file`.
void wait_for_a_line(const fs::path& file) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (lines_in(file) == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

const Record& find_record(const std::vector<Record>& records, long n, long m, DType dtype) {
  for (const Record& r : records) {
    if (r.params.seq_len == n && r.params.mem_len == m && r.dtype == dtype) return r;
  }
  FAIL("no record for N=" << n << " M=" << m);
  return records.front();
}

}  // namespace

TEST_CASE("a NumPy candidate through the helper passes in every dtype in batched processes",
          "[external]") {
  const Grid grid = small_grid(kSmallAxes, kEveryDType);
  auto candidate = testing_candidate("numpy_reference.py", 10);
  const auto records = sweep_one(grid, candidate);
  REQUIRE(records.size() == 24);
  for (const Record& r : records) {
    INFO(r.case_id << " " << dtype_name(r.dtype) << ": " << r.message);
    CHECK(r.outcome == Outcome::pass);
  }
  const ExternalStats s = candidate->stats();
  // 24 cases in batches of 10: one process, started while the first batch's inputs
  // were drawn (the helper waits for its manifest), runs it and serves the other two.
  CHECK(s.batches == 3);
  CHECK(s.processes == 1);
  CHECK(s.prestarted == 1);
  CHECK(s.served == 2);
  CHECK(s.cases == 24);
  CHECK(s.timed_cases == 24);
  CHECK(s.compute_s > 0);
  CHECK(s.compute_s < s.process_s);
  CHECK_THAT(candidate->stats_summary(), Contains("24 cases in 1 processes (2 batches served"));
}

TEST_CASE("a candidate gets the harness's environment defaults unless the harness's environment sets them",
          "[external]") {
  // A value a user might set instead of each default.
  const std::map<std::string, std::string> user_choice = {
      {"OMP_WAIT_POLICY", "ACTIVE"}, {"GLIBC_TUNABLES", "glibc.malloc.trim_threshold=131072"}};
  for (const external::EnvDefault& d : external::kCandidateEnvDefaults) {
    const std::string name = d.name;
    INFO(name);
    REQUIRE(user_choice.count(name) == 1);
    ScratchDir dir("env-default");
    const fs::path seen = dir.path / "value";
    // Written whole and renamed into place: a process started ahead for a batch that
    // never comes writes it too, and may do so while the test reads it.
    const std::string command = "printf %s \"${" + name + "-unset}\" > '" + seen.string() + ".$$' && mv '" +
                                seen.string() + ".$$' '" + seen.string() + "'; " + testing_command("numpy_reference.py");
    const auto value_seen = [&] {
      const auto records = sweep_one(small_grid("head_dim = 8\nseq_len = 3\n"),
                                     std::make_unique<SubprocessCandidate>(options_for("env", command)));
      REQUIRE(records.size() == 1);
      CHECK(records[0].outcome == Outcome::pass);
      std::ifstream in(seen);
      return std::string(std::istreambuf_iterator<char>(in), {});
    };
    // The test's own environment comes back however the test ends.
    struct Restore {
      std::string name;
      std::optional<std::string> saved;
      ~Restore() { saved ? ::setenv(name.c_str(), saved->c_str(), 1) : ::unsetenv(name.c_str()); }
    } restore{name, std::nullopt};
    if (const char* before = std::getenv(d.name)) restore.saved = before;
    ::unsetenv(d.name);
    CHECK(value_seen() == d.value);
    ::setenv(d.name, user_choice.at(name).c_str(), 1);  // the user's choice is the candidate's
    CHECK(value_seen() == user_choice.at(name));
  }
}

TEST_CASE("bf16 inputs written as float32 values reach the candidate unchanged", "[external]") {
  const Grid grid = small_grid(kSmallAxes, "[\"bf16\"]");
  SubprocessOptions o = options_for("f32", testing_command("numpy_reference.py"));
  o.bf16_inputs = Bf16Encoding::float32;
  for (const Record& r : sweep_one(grid, std::make_unique<SubprocessCandidate>(o))) {
    INFO(r.case_id << ": " << r.message);
    CHECK(r.outcome == Outcome::pass);
  }
}

TEST_CASE("a wrong output shape is a DIM_MISMATCH relating the size to the case", "[external]") {
  const auto records = sweep_one(small_grid(kSmallAxes), testing_candidate("wrong_shape.py"));
  const Record& bad = find_record(records, 7, 3, DType::fp32);
  CHECK(bad.outcome == Outcome::dim_mismatch);
  REQUIRE(bad.shape);
  CHECK(bad.shape->tensor == "k_out");
  CHECK(bad.shape->expected == "[1, 1, 10, 16]");
  CHECK(bad.shape->actual == "[1, 1, 7, 16]");
  CHECK(bad.shape->relation == "7 = N");
  // Without memory, dropping the memory keys changes nothing.
  CHECK(find_record(records, 7, 0, DType::fp32).outcome == Outcome::pass);
}

TEST_CASE("a wrong output dtype is reported as a dtype mismatch", "[external]") {
  const auto records =
      sweep_one(small_grid("head_dim = 16\nseq_len = 7\n", kEveryDType), testing_candidate("wrong_dtype.py"));
  REQUIRE(records.size() == 3);
  for (const Record& r : records) {
    CHECK(r.outcome == Outcome::dim_mismatch);
    REQUIRE(r.shape);
    CHECK(r.shape->what == "dtype");
    CHECK(r.shape->expected == dtype_name(r.dtype));
    CHECK(r.shape->actual == "float64");
  }
}

TEST_CASE("NaN in an output is NONFINITE with its index", "[external]") {
  const auto records = sweep_one(small_grid("head_dim = 16\nseq_len = 7\n"), testing_candidate("nan_output.py"));
  REQUIRE(records.size() == 1);
  CHECK(records[0].outcome == Outcome::nonfinite);
  CHECK_THAT(records[0].message, Contains("q_out: 1 non-finite") && Contains("row 6 feature 5"));
}

TEST_CASE("truncated or corrupt .npy outputs are a CRASH naming the file", "[external]") {
  const auto records = sweep_one(small_grid("head_dim = 16\nseq_len = [1, 7, 9]\n"),
                                 testing_candidate("corrupt_npy.py"));
  REQUIRE(records.size() == 3);
  CHECK(records[0].outcome == Outcome::crash);
  CHECK_THAT(records[0].message, Contains("c000.q_out.npy") && Contains("data too short"));
  CHECK(records[1].outcome == Outcome::crash);
  CHECK_THAT(records[1].message, Contains("c001.k_out.npy") && Contains("not a .npy file"));
  CHECK(records[2].outcome == Outcome::pass);
}

TEST_CASE("a command that exits without writing: CRASH with its stderr tail and finished cases kept",
          "[external]") {
  const Grid grid = small_grid("head_dim = 16\nseq_len = [1, 2, 3, 4, 5]\n");
  auto candidate = testing_candidate("exit_early.py", 3);
  const auto records = sweep_one(grid, candidate);
  REQUIRE(records.size() == 5);
  CHECK(candidate->stats().prestarted == 0);  // it never said it could wait
  // Batches [1, 2, 3] and [4, 5]: each process finishes its first case only.
  for (std::size_t i : {0u, 3u}) CHECK(records[i].outcome == Outcome::pass);
  for (std::size_t i : {1u, 2u, 4u}) {
    INFO(records[i].message);
    CHECK(records[i].outcome == Outcome::crash);
    CHECK_THAT(records[i].message,
               Contains("exit status 3") && Contains("fatal: CUDA driver not found (simulated)"));
  }
}

TEST_CASE("a serving process that dies in a later batch is replaced by a fresh one",
          "[external]") {
  // Batches run largest first, [7, 8] [5, 6] [3, 4] [1, 2]: the process started ahead
  // of the first serves the second and dies in the middle of N = 6; the third gets a
  // new process, started ahead as that one died, which serves the fourth.
  const Grid grid = small_grid("head_dim = 16\nseq_len = [1, 2, 3, 4, 5, 6, 7, 8]\n");
  auto candidate = testing_candidate("die_in_batch.py", 2);
  const auto records = sweep_one(grid, candidate);
  REQUIRE(records.size() == 8);
  for (std::size_t i : {0u, 1u, 2u, 3u, 4u, 6u, 7u}) {
    INFO(records[i].case_id << ": " << records[i].message);
    CHECK(records[i].outcome == Outcome::pass);
  }
  CHECK(records[5].outcome == Outcome::crash);
  CHECK_THAT(records[5].message, Contains("exit status 5") && Contains("dying on purpose at N=6"));
  const ExternalStats s = candidate->stats();
  CHECK(s.batches == 4);
  CHECK(s.processes == 2);
  CHECK(s.served == 2);
  CHECK(s.prestarted == 2);
  CHECK(s.failed_processes == 1);
}

TEST_CASE("a serving process that dies in a batch handed to it early loses only that batch's rest",
          "[external]") {
  // Batches run largest first: [7, 8] (first process), [5, 6] (the second, which then
  // serves), [3, 4] handed to it as soon as it was done and written, [1, 2]. It dies
  // at N = 3, before the sweep turned to that batch.
  const Grid grid = small_grid("head_dim = 16\nseq_len = [1, 2, 3, 4, 5, 6, 7, 8]\n");
  auto candidate = std::make_unique<SubprocessCandidate>(
      options_for("die3", testing_command("die_in_batch.py", "XPOSCHECK_TEST_DIE_N=3"), 2));
  const auto records = sweep_one(grid, candidate);
  REQUIRE(records.size() == 8);
  for (std::size_t i : {0u, 1u, 4u, 5u, 6u, 7u}) {
    INFO(records[i].case_id << ": " << records[i].message);
    CHECK(records[i].outcome == Outcome::pass);
  }
  CHECK(records[2].outcome == Outcome::crash);
  CHECK_THAT(records[2].message, Contains("exit status 5") && Contains("dying on purpose at N=3"));
  CHECK(records[3].outcome == Outcome::crash);
  INFO(candidate->stats_summary());
  CHECK(candidate->stats().batches == 4);
  CHECK(candidate->stats().failed_processes == 1);
}

TEST_CASE("a command that cannot be found is a CRASH saying so", "[external]") {
  auto c = std::make_unique<SubprocessCandidate>(
      options_for("missing", "/nonexistent/xposcheck-no-such-program --flag"));
  const auto records = sweep_one(small_grid("head_dim = 16\nseq_len = 7\n"), std::move(c));
  REQUIRE(records.size() == 1);
  CHECK(records[0].outcome == Outcome::crash);
  CHECK_THAT(records[0].message, Contains("exit status 127") && Contains("not found"));
}

TEST_CASE("a hanging candidate is a TIMEOUT and its processes are killed and the rest still runs",
          "[external]") {
  ScratchDir scratch("hang");
  const fs::path pid_file = scratch.path / "pids.txt";
  // Batches [N=1, N=7 (hangs), N=2] and [N=3].
  const Grid grid = small_grid("head_dim = 16\nseq_len = [1, 7, 2, 3]\n");
  SubprocessOptions o = options_for(
      "hang", testing_command("hang.py", "XPOSCHECK_TEST_PID_FILE='" + pid_file.string() + "'"), 3);
  o.case_timeout_s = 1.5;
  o.kill_grace_s = 0.5;
  auto candidate = std::make_unique<SubprocessCandidate>(o);
  const auto records = sweep_one(grid, candidate);
  REQUIRE(records.size() == 4);
  CHECK(records[0].outcome == Outcome::pass);
  CHECK(records[1].outcome == Outcome::timeout);
  CHECK_THAT(records[1].message, Contains("the case's time limit of 1.5 s"));
  CHECK(records[2].outcome == Outcome::pass);  // retried in a fresh process
  CHECK(records[3].outcome == Outcome::pass);  // the next batch
  const ExternalStats s = candidate->stats();
  CHECK(s.processes == 2);  // the retry's process serves the next batch too
  CHECK(s.served == 1);
  CHECK(s.timed_out_processes == 1);
  CHECK(s.retried_cases == 1);

  std::ifstream pids(pid_file);
  int candidate_pid = 0, helper_pid = 0;
  REQUIRE(pids >> candidate_pid >> helper_pid);
  CHECK(process_gone(candidate_pid));
  CHECK(process_gone(helper_pid));  // killed with the process group
}

TEST_CASE("a batch past its overall time limit times out the cases not reached", "[external]") {
  const Grid grid = small_grid("head_dim = 16\nseq_len = [7, 8, 9]\n");
  SubprocessOptions o =
      options_for("hang-all", testing_command("hang.py", "XPOSCHECK_TEST_HANG_N=all"), 3);
  o.case_timeout_s = 5;
  o.batch_timeout_s = 1.5;
  o.kill_grace_s = 0.2;
  const auto records = sweep_one(grid, std::make_unique<SubprocessCandidate>(o));
  REQUIRE(records.size() == 3);
  for (const Record& r : records) CHECK(r.outcome == Outcome::timeout);
  CHECK_THAT(records[0].message, Contains("time limit of 1.5 s (3 cases x 5 s, at most 1.5 s)"));
  CHECK_THAT(records[1].message, Contains("not reached"));
  CHECK_THAT(records[2].message, Contains("not reached"));
}

TEST_CASE("a candidate flooding stdout and stderr is still judged", "[external]") {
  const auto records = sweep_one(small_grid(kSmallAxes), testing_candidate("flood_output.py"));
  REQUIRE(records.size() == 8);
  for (const Record& r : records) CHECK(r.outcome == Outcome::pass);
}

TEST_CASE("a NumPy broadcast error inside the candidate is a DIM_MISMATCH", "[external]") {
  const auto records = sweep_one(small_grid(kSmallAxes), testing_candidate("numpy_broadcast.py"));
  const Record& bad = find_record(records, 7, 3, DType::fp32);
  CHECK(bad.outcome == Outcome::dim_mismatch);
  CHECK_THAT(bad.message, Contains("operands could not be broadcast together"));
  REQUIRE(bad.shape);
  CHECK_THAT(bad.shape->relation, Contains("7 = N") && Contains("10 = M + N"));
  CHECK(find_record(records, 7, 0, DType::fp32).outcome == Outcome::pass);
}

TEST_CASE("batches larger than the configured size are split across processes", "[external]") {
  SubprocessOptions o = options_for("one", testing_command("numpy_reference.py"), 1);
  SubprocessCandidate candidate(o);
  CHECK(candidate.batch_size() == 2);  // the sweep always hands over batches
  const auto records = sweep_one(small_grid("head_dim = 16\nseq_len = [1, 2, 3]\n"),
                                 std::make_unique<SubprocessCandidate>(o));
  for (const Record& r : records) CHECK(r.outcome == Outcome::pass);
}

TEST_CASE("a batch staged ahead is used only for exactly its jobs", "[external]") {
  const Fp32Cases cases("head_dim = 16\nseq_len = [3, 5]\nmem_len = [0, 2]\n");
  auto job = [&](std::size_t i) { return cases.job_of(i); };
  SubprocessCandidate candidate(options_for("staged", testing_command("numpy_reference.py")));
  const std::vector<Job> first{job(0)}, second{job(1)}, third{job(2)}, other{job(3)};
  auto all_pass = [&](const std::vector<Attempt>& attempts, const std::vector<Job>& jobs) {
    REQUIRE(attempts.size() == jobs.size());
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      const auto* out = std::get_if<CandidateOutput>(&attempts[i]);
      REQUIRE(out);
      CHECK(out->q_out.shape == jobs[i].params->q_shape());
    }
  };
  // The first process tells it serves batches; the second is kept serving.
  all_pass(candidate.run_batch(first), first);
  all_pass(candidate.run_batch(second), second);
  candidate.stage_batch(third);
  all_pass(candidate.run_batch(third), third);
  INFO(candidate.stats_summary());
  CHECK(candidate.stats().staged == 1);
  CHECK(candidate.stats().served == 1);  // handed the staged batch as soon as it was staged
  const std::size_t processes = candidate.stats().processes;
  // Staged for other jobs, which the serving process started on at once: it is
  // stopped, and the jobs that come are written again for a new one.
  candidate.stage_batch(second);
  all_pass(candidate.run_batch(other), other);
  CHECK(candidate.stats().staged == 1);
  CHECK(candidate.stats().served == 1);
  CHECK(candidate.stats().processes == processes + 1);
}

TEST_CASE("a serving process starts a staged batch before it is asked for", "[external]") {
  const Fp32Cases cases("head_dim = 16\nseq_len = [3, 5, 7]\n");
  auto job = [&](std::size_t i) { return cases.job(i); };
  SubprocessCandidate candidate(sleepy_options("sleepy", "1"));
  REQUIRE(candidate.run_batch(job(0)).size() == 1);  // learns that it serves
  REQUIRE(candidate.run_batch(job(1)).size() == 1);  // left serving
  candidate.stage_batch(job(2));
  // The sweep judges meanwhile; the process computes the staged case (a second).
  std::this_thread::sleep_for(std::chrono::seconds(3));
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<Attempt> attempts = candidate.run_batch(job(2));
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO(candidate.stats_summary());
  REQUIRE(attempts.size() == 1);
  CHECK(std::holds_alternative<CandidateOutput>(attempts[0]));
  CHECK(candidate.stats().staged == 1);
  CHECK(waited < 0.8);  // the case's second of sleep was over before it was asked for
}

TEST_CASE("no spare process starts while a serving process has the next batch", "[external]") {
  const Fp32Cases cases("head_dim = 16\nseq_len = [3, 5, 7]\n");
  auto job = [&](std::size_t i) { return cases.job(i); };
  const ScratchDir dir("spare");
  const fs::path starts = dir.path / "starts";
  const auto started = [&] { return lines_in(starts); };
  SubprocessCandidate candidate(sleepy_options("spare", "0.5", {}, starts));
  REQUIRE(candidate.run_batch(job(0)).size() == 1);  // learns that it serves
  REQUIRE(candidate.run_batch(job(1)).size() == 1);  // left serving
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // a spare would be importing by now
  const auto before = started();
  // The next batch is staged while this one runs, as a sweep does: the serving process
  // takes it as soon as it is done, and nothing else is needed.
  std::thread stager([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    candidate.stage_batch(job(0));
  });
  const std::vector<Attempt> second = candidate.run_batch(job(2));
  stager.join();
  const std::vector<Attempt> third = candidate.run_batch(job(0));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  INFO(candidate.stats_summary());
  CHECK(std::holds_alternative<CandidateOutput>(second.at(0)));
  CHECK(std::holds_alternative<CandidateOutput>(third.at(0)));
  CHECK(candidate.stats().staged == 1);
  CHECK(started() == before);
}

TEST_CASE("the first batch staged after warm_up starts in the warmed-up process before run_batch", "[external]") {
  const Fp32Cases cases("head_dim = 16\nseq_len = [3, 5]\n");
  const std::vector<Job> jobs = cases.all();
  const ScratchDir dir("first-staged");
  const fs::path order = dir.path / "order", starts = dir.path / "starts";
  SubprocessCandidate candidate(sleepy_options("first-staged", "0.3", order, starts));
  candidate.warm_up();
  candidate.stage_batch(jobs);
  // The process is on the batch before anyone asks for it.
  wait_for_a_line(order);
  REQUIRE(lines_in(order) >= 1);
  const std::vector<Attempt> got = candidate.run_batch(jobs);
  INFO(candidate.stats_summary());
  REQUIRE(got.size() == 2);
  CHECK(std::holds_alternative<CandidateOutput>(got[0]));
  CHECK(std::holds_alternative<CandidateOutput>(got[1]));
  CHECK(lines_in(order) == 2);  // each case once: the batch was not written again
  CHECK(lines_in(starts) == 1);
  const ExternalStats s = candidate.stats();
  CHECK(s.processes == 1);
  CHECK(s.prestarted == 1);
  CHECK(s.staged == 1);
  CHECK(s.served == 0);
}

TEST_CASE("a batch staged while the staged batch before runs leaves that one running", "[external]") {
  // The sweep stages the next batch while it is only about to ask for this one, which
  // a process may already be running: that process must not be ended for it.
  const Fp32Cases cases("head_dim = 16\nseq_len = [3, 5]\n");
  const ScratchDir dir("staged-twice");
  const fs::path order = dir.path / "order", starts = dir.path / "starts";
  SubprocessCandidate candidate(sleepy_options("staged-twice", "0.3", order, starts));
  candidate.warm_up();
  candidate.stage_batch(cases.job(0));
  wait_for_a_line(order);
  REQUIRE(lines_in(order) == 1);  // the first batch is running
  candidate.stage_batch(cases.job(1));
  const std::vector<Attempt> first = candidate.run_batch(cases.job(0));
  const std::vector<Attempt> second = candidate.run_batch(cases.job(1));
  INFO(candidate.stats_summary());
  CHECK(std::holds_alternative<CandidateOutput>(first.at(0)));
  CHECK(std::holds_alternative<CandidateOutput>(second.at(0)));
  CHECK(lines_in(starts) == 1);
  CHECK(lines_in(order) == 2);  // each case once
  CHECK(candidate.stats().processes == 1);
}

TEST_CASE("after the first batch a process started ahead is not handed a staged batch", "[external]") {
  // A candidate that does not serve batches gets a process started ahead for each next
  // batch; a batch staged while another runs must not start in it beside that one.
  const Fp32Cases cases("head_dim = 16\nseq_len = [3, 5]\n");
  auto job = [&](std::size_t i) { return cases.job(i); };
  const ScratchDir dir("no-early-start");
  const fs::path order = dir.path / "order";
  const auto lines = [&] { return lines_in(order); };
  SubprocessOptions options = sleepy_options("no-early-start", "0.2", order);
  options.serve = false;
  SubprocessCandidate candidate(options);
  REQUIRE(candidate.run_batch(job(0)).size() == 1);  // learns that it can wait; starts the next ahead
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  candidate.stage_batch(job(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  CHECK(lines() == 1);  // nothing ran the staged batch
  const std::vector<Attempt> second = candidate.run_batch(job(1));
  CHECK(std::holds_alternative<CandidateOutput>(second.at(0)));
  CHECK(lines() == 2);
}

TEST_CASE("the helper's bf16 conversions are exact and round to nearest even", "[external]") {
  ProcessOptions o;
  o.argv = shell_command(testing_command("check_dtypes.py"));
  o.time_limit_s = 60;
  const ProcessResult r = run_process(o);
  INFO(r.err.text());
  CHECK(r.exit_code == 0);
  CHECK(r.out.text() == "ok\n");
}

TEST_CASE("default names of command lines", "[external]") {
  CHECK(default_command_name("python3 cands/torch_rope.py --fast") == "torch_rope");
  CHECK(default_command_name("PYTHONPATH=x /usr/bin/my-kernel --flag") == "my-kernel");
  CHECK(default_command_name("") == "external");
}

// ---- the process runner on its own ---------------------------------------------

TEST_CASE("run_process reports exit status and signal and output and start failures", "[external]") {
  ProcessOptions o;
  o.argv = {"/bin/sh", "-c", "echo out; echo err >&2; exit 4"};
  ProcessResult r = run_process(o);
  CHECK(r.exit_code == 4);
  CHECK(r.out.text() == "out\n");
  CHECK(r.err.text() == "err\n");
  CHECK(r.status() == "exit status 4");

  o.argv = {"/bin/sh", "-c", "kill -SEGV $$"};
  r = run_process(o);
  CHECK(r.signal == SIGSEGV);
  CHECK_THAT(r.status(), Contains("killed by signal 11"));

  o.argv = {"/nonexistent/program"};
  r = run_process(o);
  CHECK_FALSE(r.started);
  CHECK_THAT(r.status(), Contains("could not start: /nonexistent/program: No such file"));
}

TEST_CASE("a wait woken by its descriptor checks for done and empties the descriptor", "[external]") {
  ProcessOptions o;
  o.argv = {"/bin/sh", "-c", "sleep 30"};
  ChildProcess child(o);
  REQUIRE(child.result().started);
  int wake[2];
  REQUIRE(::pipe(wake) == 0);
  std::atomic<bool> finished{false};
  std::thread reporter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    finished = true;
    REQUIRE(::write(wake[1], "xyz", 3) == 3);
  });
  int checks_after = 0;
  const bool seen = child.wait_for(20, [&] { return finished && ++checks_after > 0; }, wake[0]);
  reporter.join();
  CHECK(seen);
  CHECK(checks_after == 1);
  // Emptied: a descriptor left readable would wake every later poll at once.
  pollfd readable{wake[0], POLLIN, 0};
  CHECK(::poll(&readable, 1, 0) == 0);
  ::close(wake[0]);
  ::close(wake[1]);
}

TEST_CASE("a candidate process leads a session and a process group of its own", "[external]") {
  // /proc/PID/stat: pid (comm) state ppid pgrp session ...
  ProcessOptions o;
  o.argv = {"/bin/sh", "-c", "read -r pid comm state ppid pgrp session rest < /proc/$$/stat; "
                             "echo $((pid == pgrp)) $((pid == session))"};
  const ProcessResult r = run_process(o);
  CHECK(r.exit_code == 0);
  CHECK(r.out.text() == "1 1\n");
}

TEST_CASE("run_process keeps a bounded tail of a flood and kills on timeout", "[external]") {
  ProcessOptions o;
  o.argv = {"/bin/sh", "-c", "head -c 50000000 /dev/zero | tr '\\0' x; echo; echo end"};
  o.capture_bytes = 65536;
  ProcessResult r = run_process(o);
  CHECK(r.exit_code == 0);
  CHECK(r.out.total_bytes() == 50000005);
  CHECK(r.out.truncated());
  CHECK(r.out.text().size() == 65536);
  CHECK(r.out.text().ends_with("x\nend\n"));

  // An endless flood still reaches its deadline.
  o.argv = {"yes", "flood"};
  o.time_limit_s = 0.5;
  o.kill_grace_s = 0.2;
  r = run_process(o);
  CHECK(r.timed_out);
  CHECK(r.wall_s < 5);
  CHECK(r.out.total_bytes() > 65536);
  CHECK(r.out.text().size() == 65536);

  o.argv = {"/bin/sh", "-c", "sleep 60 & sleep 60"};
  o.time_limit_s = 0.3;
  o.kill_grace_s = 0.2;
  r = run_process(o);
  CHECK(r.timed_out);
  CHECK(r.wall_s < 5);
  CHECK(process_gone(r.pid));
}

TEST_CASE("tail_lines keeps whole last lines", "[external]") {
  CHECK(tail_lines("a\nb\nc\n", 100) == "a\nb\nc");
  CHECK(tail_lines("line one\nline two\nline three\n", 12) == "...line three");
}

// ---- the protocol's fast .npy path agrees with the general reader and writer -------

#include "../../harness/src/external/fast_npy.hpp"  // private to the harness
#include "xposcheck/candidate.h"

namespace {

std::string file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

Tensor sample(Shape shape, DType dtype) {
  Tensor t(std::move(shape));
  for (std::size_t i = 0; i < t.size(); ++i)
    t.data[i] = round_to(dtype, std::ldexp(static_cast<double>(i % 97) - 48.3, static_cast<int>(i % 29) - 14));
  return t;
}

}  // namespace

TEST_CASE("fast .npy writing is byte for byte write_npy and reading is read_npy", "[external]") {
  ScratchDir dir("npy");
  const std::pair<NpyStorage, DType> kinds[] = {
      {NpyStorage::f4, DType::fp32}, {NpyStorage::f2, DType::fp16}, {NpyStorage::bf16_bits, DType::bf16}};
  for (const auto& [storage, dtype] : kinds) {
    for (const Shape& shape : {Shape{5}, Shape{2, 3, 7, 16}, Shape{1, 1, 0, 4}}) {
      const Tensor t = sample(shape, dtype);
      external::write_input_npy(dir.path / "fast.npy", t, storage);
      write_npy(dir.path / "slow.npy", t, storage);
      INFO(dtype_name(dtype) << " " << shape_string(shape));
      CHECK(file_bytes(dir.path / "fast.npy") == file_bytes(dir.path / "slow.npy"));
      const NpyArray fast = external::read_output_npy(dir.path / "fast.npy");
      const NpyArray slow = read_npy(dir.path / "slow.npy", true);
      CHECK(fast.descr == slow.descr);
      CHECK(fast.tensor.shape == slow.tensor.shape);
      CHECK(fast.tensor.data == t.data);
    }
  }
  // A value the dtype cannot hold goes to write_npy, which names it.
  Tensor bad = sample({4}, DType::fp16);
  bad.data[2] = 0.1;
  CHECK_THROWS_WITH(external::write_input_npy(dir.path / "bad.npy", bad, NpyStorage::f2),
                    Contains("element 2") && Contains("not exactly representable"));
  // Anything but the canonical layout, and every error, goes through read_npy.
  write_npy(dir.path / "f8.npy", sample({3, 4}, DType::fp32), NpyStorage::f8);
  CHECK(external::read_output_npy(dir.path / "f8.npy").descr == "<f8");
  write_npy(dir.path / "full.npy", sample({8, 16}, DType::fp32), NpyStorage::f4);
  std::string truncated = file_bytes(dir.path / "full.npy");
  truncated.resize(truncated.size() - 3);
  std::ofstream(dir.path / "short.npy", std::ios::binary) << truncated;
  CHECK_THROWS_WITH(external::read_output_npy(dir.path / "short.npy"),
                    Contains("short.npy") && Contains("data too short"));
  // A header whose shape overflows is read_npy's to report, naming the file.
  std::string huge = truncated;
  const auto at = huge.find("(8, 16)");
  REQUIRE(at != std::string::npos);
  huge.replace(at, 7, "(99999999999, 99999999999, 9999)");
  std::ofstream(dir.path / "huge.npy", std::ios::binary) << huge;
  CHECK_THROWS_WITH(external::read_output_npy(dir.path / "huge.npy"), Contains("huge.npy"));
}

TEST_CASE("fp16 coding agrees with the C header's conversions on every bit pattern", "[external]") {
  std::vector<std::uint16_t> bits(65536);
  std::iota(bits.begin(), bits.end(), std::uint16_t{0});
  std::vector<double> got(bits.size());
  external::npy_decode(reinterpret_cast<const char*>(bits.data()), bits.size(), "<f2", got.data());
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < bits.size(); ++i) {
    const double want = xposcheck_fp16_to_float(bits[i]);
    wrong += std::memcmp(&want, &got[i], sizeof want) != 0;  // NaN payloads included
  }
  CHECK(wrong == 0);
  // Every finite value encoded back: its own pattern, exact, whole or with a short tail.
  std::vector<double> finite;
  std::vector<std::uint16_t> patterns;
  for (std::size_t i = 0; i < bits.size(); ++i)
    if ((bits[i] & 0x7C00u) != 0x7C00u) finite.push_back(got[i]), patterns.push_back(bits[i]);
  std::vector<std::uint16_t> out(finite.size());
  for (const std::size_t n : {finite.size(), finite.size() - 3, std::size_t{7}}) {
    INFO(n << " values");
    CHECK(external::npy_encode(finite.data(), n, NpyStorage::f2, reinterpret_cast<char*>(out.data())));
    CHECK(std::equal(out.begin(), out.begin() + static_cast<long>(n), patterns.begin()));
  }
  // One value fp16 cannot hold, anywhere among 1003, makes them inexact.
  for (const std::size_t at : {0, 5, 8, 100, 1001})
    for (const double v : {1.0 + 0x1p-12, 3 * 0x1p-25, 65520.0, 1e-30, 0.1, 1.0 + 0x1p-30}) {
      INFO(v << " at " << at);
      std::vector<double> x(finite.begin() + 2000, finite.begin() + 3003);
      x[at] = v;
      CHECK_FALSE(external::npy_encode(x.data(), x.size(), NpyStorage::f2, reinterpret_cast<char*>(out.data())));
    }
}

TEST_CASE("the largest batches run first, cases in the grid's order within each", "[external]") {
  // Batches of two: {1, 2}, {64, 128}, {3}; the last one is judged with the candidate
  // done, so the small ones go last.
  const Grid grid = small_grid("head_dim = 16\nseq_len = [1, 2, 64, 128, 3]\n");
  const std::filesystem::path order = std::filesystem::temp_directory_path() /
                                      ("xposcheck-order-" + std::to_string(::getpid()) + ".txt");
  std::filesystem::remove(order);
  const std::string env = "XPOSCHECK_TEST_SLEEP_S=0 XPOSCHECK_TEST_ORDER_FILE='" + order.string() + "'";
  const std::vector<Record> records =
      sweep_one(grid, std::make_unique<SubprocessCandidate>(options_for("sleepy", testing_command("sleepy.py", env), 2)));
  REQUIRE(records.size() == 5);
  for (const Record& r : records) CHECK(r.outcome == Outcome::pass);
  std::ifstream in(order);
  std::vector<long> sent{std::istream_iterator<long>(in), std::istream_iterator<long>()};
  std::filesystem::remove(order);
  CHECK(sent == std::vector<long>{64, 128, 1, 2, 3});
}

TEST_CASE("batches prepared while a slow candidate starts are judged as batches prepared in turn", "[external]") {
  // Streams make the sweep ask the candidate what it can do before the first batch; a
  // start that takes a second leaves time to prepare the batches after the first.
  const Grid grid = small_grid(std::string(kSmallAxes) + "[[grid]]\nhead_dim = 16\nprefill = 5\nsteps = 4\n",
                               kEveryDType);
  const auto records_of = [&](bool ask_first) {
    SubprocessOptions o = options_for("numpy", "sleep 1; " + testing_command("numpy_reference.py"), 3);
    o.prestart = ask_first;
    return sweep_one(grid, std::make_unique<SubprocessCandidate>(o));
  };
  const std::vector<Record> ahead = records_of(true), in_turn = records_of(false);
  REQUIRE(ahead.size() == 27);
  REQUIRE(in_turn.size() == ahead.size());
  for (std::size_t i = 0; i < ahead.size(); ++i) {
    const Record &a = ahead[i], &b = in_turn[i];
    INFO(a.case_id << " " << dtype_name(a.dtype) << ": " << a.message);
    CHECK(a.case_id == b.case_id);
    CHECK(a.dtype == b.dtype);
    CHECK(a.outcome == Outcome::pass);
    CHECK(b.outcome == Outcome::pass);
    REQUIRE(a.tensors.size() == b.tensors.size());
    for (std::size_t t = 0; t < a.tensors.size(); ++t) {
      CHECK(a.tensors[t].name == b.tensors[t].name);
      CHECK(a.tensors[t].elements == b.tensors[t].elements);
      CHECK(a.tensors[t].max_ulps == b.tensors[t].max_ulps);
      CHECK(a.tensors[t].mean_ulps == b.tensors[t].mean_ulps);
    }
  }
}
