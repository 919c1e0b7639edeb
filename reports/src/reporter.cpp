#include "xposcheck/reports/reporter.hpp"

namespace xposcheck {

void report(const Results& results, std::span<Reporter* const> reporters) {
  report(results, reporters, gate_verdict(results));
}

void report(const Results& results, std::span<Reporter* const> reporters, const GateVerdict& verdict) {
  for (Reporter* r : reporters) r->begin(results.run, verdict);
  for (const Record& record : results.records) {
    for (Reporter* r : reporters) r->record(record);
  }
  for (Reporter* r : reporters) r->end();
}

}  // namespace xposcheck
