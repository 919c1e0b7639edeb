#pragma once
// Run metadata recorded with every results file.
#include <string>
#include <vector>

#include "xposcheck/cases/grid.hpp"
#include "xposcheck/harness/results.hpp"

namespace xposcheck::cli {

RunInfo make_run_info(const Grid& grid, const std::vector<std::string>& candidates,
                      const std::vector<DType>& dtypes, const ToleranceOverrides& overrides);

// What an external candidate's code is, for RunInfo::candidate_code: its command line
// (or library path) and a digest of every file a word of it names (the interpreter,
// the script, the library), so that edited code under the same name is other code.
std::string candidate_code(const std::string& command_or_library);

}  // namespace xposcheck::cli
