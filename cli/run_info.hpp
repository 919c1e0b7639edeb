#pragma once
// Run metadata recorded with every results file.
#include <string>
#include <vector>

#include "xposcheck/cases/grid.hpp"
#include "xposcheck/harness/results.hpp"

namespace xposcheck::cli {

RunInfo make_run_info(const Grid& grid, const std::vector<std::string>& candidates,
                      const std::vector<DType>& dtypes, const ToleranceOverrides& overrides);

}  // namespace xposcheck::cli
