// Results files (xposcheck merge, report, explain and baseline read them).
#include "fuzz_driver.hpp"
#include "xposcheck/harness/results.hpp"

void xposcheck::fuzz::fuzz_one(const std::string& bytes, const std::string&) {
  (void)read_results(write_scratch("results.json", bytes));
}

XPOSCHECK_FUZZ_MAIN("results")
