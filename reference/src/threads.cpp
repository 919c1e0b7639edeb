#include "xposcheck/reference/threads.hpp"

#include <dlfcn.h>

namespace xposcheck {
namespace {
thread_local bool serial = false;
}  // namespace

SerialScope::SerialScope() : previous_(serial) { serial = true; }
SerialScope::~SerialScope() { serial = previous_; }

bool serial_here() { return serial; }

bool set_blas_threads(int threads) {
  using SetThreads = void (*)(int);
  // OpenBLAS spins its idle workers (sched_yield) between calls: with one case per
  // core already, those workers only take time from the cases.
  auto* set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (!set) return false;
  set(threads);
  return true;
}

}  // namespace xposcheck
