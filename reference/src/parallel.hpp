#pragma once
// A static-partition parallel loop on std::thread. Each index is processed by exactly
// one thread with no shared accumulation, so results never depend on the thread count.
#include <algorithm>
#include <exception>
#include <thread>
#include <vector>

#include "xposcheck/reference/threads.hpp"

namespace xposcheck {

// Calls body(begin, end) on disjoint ranges covering 0..count-1, on up to
// threads_here() threads, with at least min_chunk indices per thread. The first
// exception thrown by any range is rethrown after all threads have joined.
template <class Body>
void parallel_for(long count, long min_chunk, Body body) {
  const long threads = std::clamp(count / std::max(1L, min_chunk), 1L, static_cast<long>(threads_here()));
  if (threads <= 1) {
    if (count > 0) body(0L, count);
    return;
  }
  std::vector<std::exception_ptr> errors(threads);
  std::vector<std::thread> pool;
  for (long t = 0; t < threads; ++t) {
    const long begin = count * t / threads, end = count * (t + 1) / threads;
    pool.emplace_back([&, t, begin, end] {
      const ThreadBudget one(1);  // the threads already share the budget out
      try {
        body(begin, end);
      } catch (...) {
        errors[t] = std::current_exception();
      }
    });
  }
  for (auto& th : pool) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace xposcheck
