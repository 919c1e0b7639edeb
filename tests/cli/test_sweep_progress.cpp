// The sweep's progress printer (cli/sweep_progress.cpp) driven in-process: a fake
// clock, the terminal test forced either way, the output collected. And the command
// itself in a log (its stderr is a file here): no line per passing record.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "cli_runner.hpp"
#include "sweep_progress.hpp"

using Catch::Matchers::Contains;
using namespace xposcheck;
using namespace xposcheck::cli;
using xposcheck::testing::q;
using xposcheck::testing::run_cli;
using xposcheck::testing::TempDir;

namespace {

// 100 records, one every 0.5 s; records 10 and 50 fail (TOLERANCE).
struct Driven {
  std::string text;
  std::vector<std::string> lines() const {
    std::vector<std::string> out;
    std::size_t at = 0;
    for (std::size_t nl; (nl = text.find('\n', at)) != std::string::npos; at = nl + 1)
      out.push_back(text.substr(at, nl - at));
    return out;
  }
};

Driven drive(ProgressStyle style, bool terminal, std::size_t columns = 0) {
  Driven d;
  double now = 100.0;
  ProgressSettings s;
  s.style = style;
  s.terminal = terminal;
  s.columns = columns;
  s.clock = [&now] { return now; };
  s.write = [&d](std::string_view t) { d.text += t; };
  ProgressPrinter printer(s);
  Progress p;
  p.total = 100;
  Record r;
  r.candidate = "cand";
  r.dtype = DType::bf16;
  for (std::size_t k = 1; k <= 100; ++k) {
    now += 0.5;
    r.case_id = "D8-N" + std::to_string(k);
    r.outcome = k == 10 || k == 50 ? Outcome::tolerance : Outcome::pass;
    p.done = k;
    p.failures += r.outcome == Outcome::pass ? 0 : 1;
    p.elapsed_s = 0.5 * double(k);
    p.last = &r;
    printer(p);
  }
  printer.finish();
  return d;
}

}  // namespace

TEST_CASE("in a log: a line every 5 s and one per failing record", "[cli][progress]") {
  const std::vector<std::string> lines = drive(ProgressStyle::normal, false).lines();
  REQUIRE(lines.size() == 12);  // at 5, 10, ..., 50 s (records 10, 20, ..., 100) and two failures
  CHECK(lines[0] == "[10/100] TOLERANCE    cand D8-N10 bf16");
  CHECK(lines[1] == "10/100 records, 1 failing, 2.0/s, ~45 s left");
  CHECK(lines[2] == "20/100 records, 1 failing, 2.0/s, ~40 s left");
  CHECK(lines[5] == "[50/100] TOLERANCE    cand D8-N50 bf16");
  CHECK(lines[6] == "50/100 records, 2 failing, 2.0/s, ~25 s left");
  CHECK(lines[11] == "100/100 records, 2 failing, 2.0/s, done in 50 s");
  CHECK(lines[4] == "40/100 records, 1 failing, 2.0/s, ~30 s left");
}

TEST_CASE("on a terminal: one status line redrawn in place, failing records above it", "[cli][progress]") {
  const Driven d = drive(ProgressStyle::normal, true);
  const std::vector<std::string> lines = d.lines();
  // Two failing records, then the status line's own newline from finish().
  REQUIRE(lines.size() == 3);
  CHECK_THAT(lines[0], Contains("\r\x1b[K[10/100] TOLERANCE    cand D8-N10 bf16"));
  CHECK_THAT(lines[1], Contains("\r\x1b[K[50/100] TOLERANCE    cand D8-N50 bf16"));
  // Redrawn for every record (0.5 s apart, above the 0.1 s throttle); the last one:
  CHECK_THAT(lines[2], Contains("\r[##########----------] 50/100  PASS 48  TOLERANCE 2  2.0/s  ~25 s left\x1b[K"));
  const std::string last = "\r[####################] 100/100  PASS 98  TOLERANCE 2  2.0/s  done in 50 s\x1b[K";
  CHECK(lines[2].size() >= last.size());
  CHECK(lines[2].substr(lines[2].size() - last.size()) == last);
  CHECK_THAT(d.text, Contains("] 99/100  PASS 97  TOLERANCE 2  2.0/s  ~0 s left"));
}

TEST_CASE("the status line is cut to the terminal's width", "[cli][progress]") {
  const std::vector<std::string> lines = drive(ProgressStyle::normal, true, 40).lines();
  REQUIRE(lines.size() == 3);
  CHECK(lines[2].substr(lines[2].rfind('\r')) == "\r[####################] 100/100  PASS 98\x1b[K");
}

TEST_CASE("a line per record with --verbose, nothing with --quiet", "[cli][progress]") {
  for (const bool terminal : {false, true}) {
    const std::vector<std::string> lines = drive(ProgressStyle::verbose, terminal).lines();
    REQUIRE(lines.size() == 100);
    CHECK(lines[0] == "[1/100] PASS         cand D8-N1 bf16");
    CHECK(lines[9] == "[10/100] TOLERANCE    cand D8-N10 bf16");
    CHECK(drive(ProgressStyle::quiet, terminal).text.empty());
  }
}

TEST_CASE("rates and times left read as people read them", "[cli][progress]") {
  CHECK(rate_text(38.4) == "38/s");
  CHECK(rate_text(0.44) == "0.4/s");
  CHECK(duration_text(40.2) == "40 s");
  CHECK(duration_text(725) == "12 min");
  CHECK(duration_text(12240) == "3.4 h");
}

TEST_CASE("sweep in a log prints failing records only, --verbose every record", "[cli][progress]") {
  const TempDir dir("xposcheck-progress");
  std::ofstream(dir.path / "grid.toml") << "name = \"g\"\ndtypes = [\"fp32\"]\n[axes]\nhead_dim = 8\n"
                                            "seq_len = [3, 5]\n";
  const std::string base = "sweep --grid " + q(dir.path / "grid.toml") +
                            " --candidate fp32-angles,random-garbage --out " + q(dir.path / "r.json");
  const auto run = run_cli(dir, base);
  INFO(run.err);
  CHECK(run.status == 1);
  CHECK_THAT(run.err, Contains("] TOLERANCE    random-garbage D8-N3-s1 fp32"));
  CHECK_THAT(run.err, Contains("] TOLERANCE    random-garbage D8-N5-s1 fp32"));
  CHECK(run.err.find("PASS") == std::string::npos);
  CHECK_THAT(run.err, Contains("4/4 records, 2 failing, "));
  const auto verbose = run_cli(dir, base + " --verbose");
  CHECK_THAT(verbose.err, Contains("] PASS         fp32-angles D8-N3-s1 fp32"));
  CHECK_THAT(verbose.err, Contains("] PASS         fp32-angles D8-N5-s1 fp32"));
  CHECK(verbose.err.find("records, ") == std::string::npos);
  const auto quiet = run_cli(dir, base + " --quiet");
  CHECK(quiet.err.empty());
  const auto both = run_cli(dir, base + " --quiet --verbose");
  CHECK(both.status == 2);
  CHECK_THAT(both.err, Contains("--verbose") || Contains("--quiet"));
}

TEST_CASE("a tick shows the work in flight on the status line and in the log", "[cli][progress]") {
  for (const bool terminal : {true, false}) {
    std::string text;
    double now = 0;
    ProgressSettings s;
    s.terminal = terminal;
    s.columns = terminal ? 100 : 0;
    s.clock = [&now] { return now; };
    s.write = [&text](std::string_view t) { text += t; };
    ProgressPrinter printer(s);
    Progress p;
    p.total = 1;
    p.running = {"D128-N65536-s1 fp32: golden outputs, 6 s", "D8-N3-s1 fp32: fp32-angles, 0 s"};
    now = 6;
    printer(p);
    printer.finish();
    INFO(text);
    if (terminal) {
      CHECK_THAT(text, Contains("] 0/1  0.0/s  running D128-N65536-s1 fp32: golden outputs, 6 s (+1 more)\x1b[K"));
    } else {
      CHECK_THAT(text, Contains("0/1 records, 0 failing, 0.0/s, running D128-N65536-s1 fp32: golden outputs, 6 s (+1 more)"));
    }
  }
}

TEST_CASE("the status line is cut between characters, never inside one", "[cli][progress]") {
  std::string text;
  ProgressSettings s;
  s.terminal = true;
  s.columns = 45;  // the cut falls on the second byte of the e with acute accent
  double now = 0;
  s.clock = [&now] { return now; };
  s.write = [&text](std::string_view t) { text += t; };
  ProgressPrinter printer(s);
  Progress p;
  p.total = 1;
  p.running = {"\xc3\xa9t\xc3\xa9 fp32: golden outputs, 1 s"};
  now = 1;
  printer(p);
  CHECK_THAT(text, Contains("0.0/s  running \x1b[K"));
}
