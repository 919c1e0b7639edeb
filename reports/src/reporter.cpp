#include "xposcheck/reports/reporter.hpp"

namespace xposcheck {

void report(const Results& results, std::span<Reporter* const> reporters) {
  for (Reporter* r : reporters) r->begin(results.run);
  for (const Record& record : results.records) {
    for (Reporter* r : reporters) r->record(record);
  }
  for (Reporter* r : reporters) r->end();
}

}  // namespace xposcheck
