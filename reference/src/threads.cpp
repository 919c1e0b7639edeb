#include "xposcheck/reference/threads.hpp"

#include <algorithm>
#include <thread>

namespace xposcheck {
namespace {
thread_local unsigned budget = 0;  // 0: not set on this thread

unsigned cores() { return std::max(1u, std::thread::hardware_concurrency()); }
}  // namespace

ThreadBudget::ThreadBudget(unsigned threads) : previous_(budget) {
  budget = std::clamp(threads, 1u, threads_here());
}
ThreadBudget::~ThreadBudget() { budget = previous_; }

unsigned threads_here() { return budget ? budget : cores(); }

}  // namespace xposcheck
