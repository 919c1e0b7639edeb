#pragma once
// How many threads work started on a thread may use. By default every core; a caller
// that keeps cores busy already gives the work below it fewer: a sweep running one
// case per thread (one each), a sweep told `--jobs N`. Nested threads beyond the cores
// only contend.
namespace xposcheck {

// While alive, work started on the calling thread uses at most `threads` threads
// (at least one), and never more than the budget it was given itself.
class ThreadBudget {
 public:
  explicit ThreadBudget(unsigned threads);
  ~ThreadBudget();
  ThreadBudget(const ThreadBudget&) = delete;
  ThreadBudget& operator=(const ThreadBudget&) = delete;

 private:
  unsigned previous_;
};

// The budget on this thread: hardware_concurrency() (at least 1) unless a
// ThreadBudget says less.
unsigned threads_here();

// One thread: the golden paths and tables run on the calling thread only.
inline bool serial_here() { return threads_here() == 1; }

}  // namespace xposcheck
