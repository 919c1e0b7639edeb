// `xposcheck golden` streams: its peak memory is a few blocks of rows whatever the
// case's length. Two cases 4x apart in length run as child processes and their
// maximum resident set sizes (getrusage via wait4) are compared: the least of three
// runs each, since the allocator's timing between the computing and writing threads
// adds tens of MiB to some runs (seen 46-90 MiB for the same case), while a tensor
// held whole would add its hundreds of MiB to every run.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "cli_runner.hpp"

using xposcheck::testing::TempDir;

namespace {

struct Peak {
  int status = -1;
  long max_rss_kib = 0;
};

// Runs `xposcheck golden <args> --out dir/out` with its output discarded.
Peak run_golden(const TempDir& dir, std::vector<std::string> args) {
  args.insert(args.begin(), {XPOSCHECK_EXE, "golden"});
  args.insert(args.end(), {"--out", (dir.path / "out").string()});
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (!std::freopen("/dev/null", "w", stdout)) std::_Exit(126);
    ::execv(argv[0], argv.data());
    std::_Exit(127);
  }
  int raw = 0;
  rusage usage{};
  Peak p;
  if (pid > 0 && ::wait4(pid, &raw, 0, &usage) == pid) {
    p.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    p.max_rss_kib = usage.ru_maxrss;
  }
  return p;
}

}  // namespace

TEST_CASE("golden's peak memory does not grow with the case", "[cli][golden]") {
  const TempDir dir("xposcheck-golden-memory");
  // D = 8, one head: 65536 rows (2^19 elements) a block. Keys: 8 and 32 blocks, whose
  // k_in, k_out alone would take 34 MB and 134 MB each if held whole.
  auto run = [&](const char* mem_len) {
    Peak least;
    for (int i = 0; i < 3; ++i) {
      const Peak p = run_golden(dir, {"--head-dim", "8", "--seq-len", "16", "--mem-len", mem_len,
                                      "--logit-rows", "4", "--dtype", "bf16", "--no-xpos"});
      if (p.status != 0) return p;
      if (i == 0 || p.max_rss_kib < least.max_rss_kib) least = p;
    }
    return least;
  };
  const Peak small = run("524272"), large = run("2097136");
  INFO("max RSS: " << small.max_rss_kib << " KiB for 8 blocks, " << large.max_rss_kib
                   << " KiB for 32 blocks");
  REQUIRE(small.status == 0);
  REQUIRE(large.status == 0);
  // Whole tensors would add 4 x 100 MB; blocks held are the same in both.
  CHECK(large.max_rss_kib < small.max_rss_kib + 24 * 1024);
  CHECK(large.max_rss_kib < 160 * 1024);
}
