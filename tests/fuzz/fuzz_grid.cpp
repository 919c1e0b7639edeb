// Grid TOML files, through the cases component's parser.
#include "fuzz_driver.hpp"
#include "xposcheck/cases/grid.hpp"

void xposcheck::fuzz::fuzz_one(const std::string& bytes, const std::string&) {
  (void)parse_grid(bytes, "fuzz.toml");
}

XPOSCHECK_FUZZ_MAIN("grid")
