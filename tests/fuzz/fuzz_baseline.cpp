// Regression baselines.
#include "fuzz_driver.hpp"
#include "xposcheck/harness/baseline.hpp"

void xposcheck::fuzz::fuzz_one(const std::string& bytes, const std::string&) {
  (void)parse_baseline(bytes, "fuzz-baseline.json");
}

XPOSCHECK_FUZZ_MAIN("baseline")
