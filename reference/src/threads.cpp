#include "xposcheck/reference/threads.hpp"

namespace xposcheck {
namespace {
thread_local bool serial = false;
}  // namespace

SerialScope::SerialScope() : previous_(serial) { serial = true; }
SerialScope::~SerialScope() { serial = previous_; }

bool serial_here() { return serial; }

}  // namespace xposcheck
