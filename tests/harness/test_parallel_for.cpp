// The harness's work-sharing loop: how many threads it starts, and the share of the
// thread budget each one's own work gets.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "parallel_for.hpp"

using namespace xposcheck;

namespace {

const unsigned kCores = std::max(1u, std::thread::hardware_concurrency());

struct Seen {
  std::set<std::thread::id> threads;
  std::vector<unsigned> budgets;
  int calls = 0;
};

Seen run_loop(std::size_t n, unsigned max_threads) {
  std::mutex mutex;
  Seen seen;
  parallel_for(n, [&](std::size_t) {
    std::lock_guard lock(mutex);
    seen.threads.insert(std::this_thread::get_id());
    seen.budgets.push_back(threads_here());
    ++seen.calls;
  }, max_threads);
  return seen;
}

}  // namespace

TEST_CASE("the work-sharing loop shares this thread's budget out among its threads") {
  for (unsigned budget : {1u, 2u, 4u}) {
    for (unsigned max_threads : {1u, 2u, 4u}) {
      INFO("budget " << budget << ", at most " << max_threads << " threads");
      const ThreadBudget scope(budget);
      const unsigned have = threads_here();
      const unsigned threads = std::min(have, max_threads);
      // Slow enough that every thread started takes an index.
      std::atomic<int> started{0};
      std::vector<std::thread::id> ids;
      std::mutex mutex;
      std::vector<unsigned> budgets;
      parallel_for(64, [&](std::size_t) {
        ++started;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        std::lock_guard lock(mutex);
        ids.push_back(std::this_thread::get_id());
        budgets.push_back(threads_here());
      }, max_threads);
      CHECK(started == 64);
      CHECK(std::set<std::thread::id>(ids.begin(), ids.end()).size() <= threads);
      CHECK(budgets == std::vector<unsigned>(64, have / threads));
      CHECK(threads_here() == have);  // the caller's own budget is back
    }
  }
}

TEST_CASE("one index or a budget of one runs on the calling thread with the whole budget") {
  const Seen one = run_loop(1, 4);
  CHECK(one.calls == 1);
  CHECK(one.threads == std::set{std::this_thread::get_id()});
  CHECK(one.budgets == std::vector{kCores});
  const ThreadBudget serial(1);
  const Seen all = run_loop(50, 4);
  CHECK(all.calls == 50);
  CHECK(all.threads == std::set{std::this_thread::get_id()});
  CHECK(all.budgets == std::vector<unsigned>(50, 1u));
}

TEST_CASE("the work-sharing loop finishes every index before rethrowing the first error") {
  std::atomic<int> calls{0};
  CHECK_THROWS_WITH(parallel_for(20, [&](std::size_t i) {
    ++calls;
    if (i == 3) throw std::runtime_error("index 3");
  }), "index 3");
  CHECK(calls == 20);
}
