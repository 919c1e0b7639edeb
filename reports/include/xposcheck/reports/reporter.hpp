#pragma once
// One reporter per output format behind one small event interface: every format is
// fed the same run metadata and the same records, in the same order.
#include <memory>
#include <span>

#include "xposcheck/harness/results.hpp"

namespace xposcheck {

class Reporter {
 public:
  virtual ~Reporter() = default;
  virtual void begin(const RunInfo& run) { (void)run; }
  virtual void record(const Record& record) = 0;
  // Called once after the last record; file reporters write their output here.
  virtual void end() {}
};

// Feeds every record of the results to every reporter.
void report(const Results& results, std::span<Reporter* const> reporters);

}  // namespace xposcheck
