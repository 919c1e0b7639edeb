#pragma once
// How many threads the reference's own loops may use. By default they spread over
// every core; a caller that already keeps every core busy (a sweep running one case
// per thread) asks for serial work instead, since nested threads only contend.
namespace xposcheck {

// While alive, the golden paths and tables run on the calling thread only.
class SerialScope {
 public:
  SerialScope();
  ~SerialScope();
  SerialScope(const SerialScope&) = delete;
  SerialScope& operator=(const SerialScope&) = delete;

 private:
  bool previous_;
};

// True inside a SerialScope on this thread.
bool serial_here();


}  // namespace xposcheck
