#pragma once
// One reporter per output format behind one small event interface: every format is
// fed the same run metadata and the same records, in the same order.
#include <memory>
#include <span>

#include "xposcheck/harness/gate.hpp"
#include "xposcheck/harness/results.hpp"

namespace xposcheck {

class Reporter {
 public:
  virtual ~Reporter() = default;
  // The run's gate verdict comes first: a report's headline and its per-record
  // marks all follow the one policy.
  virtual void begin(const RunInfo& run, const GateVerdict& verdict) { (void)run, (void)verdict; }
  virtual void record(const Record& record) = 0;
  // Called once after the last record; file reporters write their output here.
  virtual void end() {}
};

// Feeds the verdict and every record of the results to every reporter.
void report(const Results& results, std::span<Reporter* const> reporters, const GateVerdict& verdict);
// The same with the default policy's verdict and no baseline.
void report(const Results& results, std::span<Reporter* const> reporters);

}  // namespace xposcheck
