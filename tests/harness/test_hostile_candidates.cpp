// Candidates that attack the harness rather than merely fail: bytes that are not
// UTF-8, FIFOs and links where files belong, files that claim gigabytes, hangs that
// must cost one case's allowance, and helpers that try to outlive the sweep.
#include <chrono>
#include <fstream>

#include <catch2/catch.hpp>

#include "external_test_support.hpp"
#include "xposcheck/harness/candidate_text.hpp"
#include "xposcheck/harness/results.hpp"

using namespace xposcheck;
using namespace xposcheck::test;
using Catch::Matchers::Contains;

namespace {

std::unique_ptr<SubprocessCandidate> candidate(const std::string& script, std::size_t batch = 8,
                                               const std::string& env = "") {
  return std::make_unique<SubprocessCandidate>(options_for(script, testing_command(script, env), batch));
}

bool valid_utf8_without_escapes(const std::string& s) {
  return candidate_text(s) == s && s.find('\x1b') == std::string::npos;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("bytes that are not UTF-8 in a candidate's output and error records are made safe",
          "[external][hostile]") {
  const Grid grid = small_grid("head_dim = 16\nseq_len = [1, 2]\n");
  ScratchDir dir("bad-bytes");
  std::vector<std::unique_ptr<Candidate>> list;
  list.push_back(candidate("bad_bytes.py"));
  auto exit3 = options_for("exit3", "printf '\\377\\376\\033[2J' >&2; exit 3");
  list.push_back(std::make_unique<SubprocessCandidate>(exit3));
  RunInfo run;
  run.candidates = {"bad_bytes.py", "exit3"};
  ResultsStore store(dir.path / "results.json", run, {grid.cases[0].id, grid.cases[1].id});
  SweepOptions options;
  options.jobs = 1;
  run_sweep(grid, list, options, store);
  const Results written = store.finish();
  REQUIRE(written.records.size() == 4);
  for (const Record& r : written.records) {
    INFO(r.message);
    CHECK(r.outcome == Outcome::crash);
    CHECK(valid_utf8_without_escapes(r.message));
    CHECK_THAT(r.message, Contains("\xEF\xBF\xBD") && Contains("\\x1b[2J"));
  }
  // The results file is complete and reads back.
  CHECK(read_results(dir.path / "results.json").records.size() == 4);
}

TEST_CASE("FIFOs and links where files belong are refused without waiting on them",
          "[external][hostile]") {
  const Grid grid = small_grid("head_dim = 16\nseq_len = [1, 2, 3, 4, 5]\n");
  SubprocessOptions o = options_for("fifo", testing_command("fifo_files.py"));
  o.case_timeout_s = 20;
  const auto t0 = std::chrono::steady_clock::now();
  const auto records = sweep_one(grid, std::make_unique<SubprocessCandidate>(o));
  CHECK(seconds_since(t0) < 15);
  REQUIRE(records.size() == 5);
  CHECK(records[0].outcome == Outcome::crash);
  CHECK_THAT(records[0].message, Contains("c000.q_out.npy: not a regular file (a FIFO)"));
  CHECK(records[1].outcome == Outcome::crash);
  CHECK_THAT(records[1].message, Contains("c001.error.json: not a regular file (a FIFO)"));
  CHECK(records[2].outcome == Outcome::pass);  // only its timings were lost
  CHECK(records[3].outcome == Outcome::crash);
  CHECK_THAT(records[3].message, Contains("c003.q_out.npy: not a regular file (a symbolic link)"));
  CHECK(records[4].outcome == Outcome::pass);
}

TEST_CASE("files that claim gigabytes cost nothing to refuse", "[external][hostile]") {
  const Grid grid = small_grid("head_dim = 16\nseq_len = [1, 2, 3]\n");
  const auto records = sweep_one(grid, candidate("huge_claims.py"));
  REQUIRE(records.size() == 3);
  CHECK(records[0].outcome == Outcome::dim_mismatch);
  REQUIRE(records[0].shape);
  CHECK(records[0].shape->actual == "[2147483648]");
  CHECK(records[1].outcome == Outcome::crash);
  CHECK_THAT(records[1].message, Contains("header length 4294967280 is larger than"));
  CHECK(records[2].outcome == Outcome::crash);
  CHECK_THAT(records[2].message, Contains("c002.error.json: 1073741824 bytes, more than the 1048576"));
}

TEST_CASE("a hanging case costs its own allowance and the rest of the batch goes on",
          "[external][hostile]") {
  std::string axes = "head_dim = 16\nseq_len = [";
  for (int n = 1; n <= 32; ++n) axes += std::to_string(n) + (n < 32 ? ", " : "]\n");
  SubprocessOptions o = options_for("hang-first", testing_command("hang.py", "XPOSCHECK_TEST_HANG_N=1"), 32);
  o.case_timeout_s = 2;
  o.kill_grace_s = 0.5;
  const auto t0 = std::chrono::steady_clock::now();
  const auto records = sweep_one(small_grid(axes), std::make_unique<SubprocessCandidate>(o));
  CHECK(seconds_since(t0) < 12);
  REQUIRE(records.size() == 32);
  CHECK(records[0].outcome == Outcome::timeout);
  CHECK_THAT(records[0].message, Contains("the case's time limit of 2 s"));
  for (std::size_t i = 1; i < records.size(); ++i) {
    INFO(records[i].case_id << ": " << records[i].message);
    CHECK(records[i].outcome == Outcome::pass);
  }
}

TEST_CASE("a slow case within its allowance does not make the next case take the blame",
          "[external][hostile]") {
  SubprocessOptions o = options_for("slow", testing_command("slow_first.py", "XPOSCHECK_TEST_SLOW_S=2"), 8);
  o.case_timeout_s = 4;  // the slow case plus start-up fits
  const auto records = sweep_one(small_grid("head_dim = 16\nseq_len = [1, 2]\n"),
                                 std::make_unique<SubprocessCandidate>(o));
  REQUIRE(records.size() == 2);
  for (const Record& r : records) {
    INFO(r.message);
    CHECK(r.outcome == Outcome::pass);
  }
  CHECK(records[0].timing.candidate_s > records[1].timing.candidate_s);
}

TEST_CASE("helpers a candidate starts in a session of its own do not outlive it",
          "[external][hostile]") {
  ScratchDir scratch("escape");
  const fs::path pid_file = scratch.path / "pids.txt";
  const auto records = sweep_one(
      small_grid("head_dim = 16\nseq_len = [1, 2]\n"),
      candidate("escape_group.py", 8, "XPOSCHECK_TEST_PID_FILE='" + pid_file.string() + "'"));
  for (const Record& r : records) CHECK(r.outcome == Outcome::pass);
  std::ifstream pids(pid_file);
  int helper = 0, count = 0;
  while (pids >> helper) {
    ++count;
    CHECK(process_gone(helper));
  }
  CHECK(count >= 1);
}
