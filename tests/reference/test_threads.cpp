// The thread budget: how many threads work started on a thread may use, and the
// reference's parallel loop keeping to it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "parallel.hpp"
#include "xposcheck/reference/threads.hpp"

using namespace xposcheck;

namespace {

const unsigned kCores = std::max(1u, std::thread::hardware_concurrency());

struct Range {
  long begin, end;
  std::thread::id thread;
  unsigned budget;
};

// The ranges a parallel loop over `count` indices hands out, with where they ran.
std::vector<Range> ranges_of(long count, long min_chunk) {
  std::mutex mutex;
  std::vector<Range> ranges;
  parallel_for(count, min_chunk, [&](long begin, long end) {
    std::lock_guard lock(mutex);
    ranges.push_back({begin, end, std::this_thread::get_id(), threads_here()});
  });
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
  return ranges;
}

}  // namespace

TEST_CASE("a thread's budget is every core until a ThreadBudget lowers it for its scope") {
  CHECK(threads_here() == kCores);
  CHECK(serial_here() == (kCores == 1));
  {
    const ThreadBudget one(1);
    CHECK(threads_here() == 1);
    CHECK(serial_here());
    {
      const ThreadBudget more(kCores + 7);  // never more than the budget it was given
      CHECK(threads_here() == 1);
    }
    CHECK(threads_here() == 1);
  }
  CHECK(threads_here() == kCores);
  const ThreadBudget none(0);  // at least one
  CHECK(threads_here() == 1);
  std::thread([] { CHECK(threads_here() == kCores); }).join();  // a new thread starts afresh
}

TEST_CASE("the reference's parallel loop uses at most the budget's threads, each serial inside") {
  for (unsigned budget : {1u, 2u, 3u}) {
    INFO("budget " << budget);
    const ThreadBudget scope(budget);
    const std::vector<Range> ranges = ranges_of(1000, 1);
    REQUIRE(!ranges.empty());
    CHECK(ranges.size() == std::min(budget, kCores));
    long next = 0;
    std::set<std::thread::id> threads;
    for (const Range& r : ranges) {
      CHECK(r.begin == next);  // disjoint, in order, covering every index
      next = r.end;
      threads.insert(r.thread);
      CHECK(r.budget == (ranges.size() == 1 ? threads_here() : 1u));
    }
    CHECK(next == 1000);
    CHECK(threads.size() == ranges.size());
    if (ranges.size() == 1) CHECK(ranges[0].thread == std::this_thread::get_id());
  }
  // Fewer indices than min_chunk per thread: one range, on the calling thread.
  const std::vector<Range> small = ranges_of(10, 64);
  REQUIRE(small.size() == 1);
  CHECK(small[0].thread == std::this_thread::get_id());
  CHECK(small[0].end == 10);
}
