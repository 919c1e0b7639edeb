#pragma once
// Runs f(0) .. f(n-1) on up to max_threads threads (and no more than this thread's
// ThreadBudget), each taking the next index when it is free (cases differ in cost by
// orders of magnitude). Each thread's own work gets its share of the budget: with
// as many threads as cores, the reference's loops run serially inside them. The
// first exception thrown is rethrown after every thread has finished.
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "xposcheck/reference/threads.hpp"

namespace xposcheck {

template <class F>
void parallel_for(std::size_t n, F f, unsigned max_threads = 4) {
  const unsigned budget = threads_here();
  const unsigned threads =
      std::max(1u, static_cast<unsigned>(std::min<std::size_t>({n, max_threads, budget})));
  std::atomic<std::size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&] {
    const ThreadBudget share(budget / threads);
    for (std::size_t i = next++; i < n; i = next++) {
      try {
        f(i);
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace xposcheck
