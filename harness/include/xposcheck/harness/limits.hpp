#pragma once
// What a run would need, estimated before it starts, so that a grid or flag that
// cannot fit is refused with the estimate and the limit instead of being OOM-killed
// or running for hours (docs/grids.md, Limits).
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "xposcheck/cases/grid.hpp"

namespace xposcheck {

// A run that would exceed a limit: what() gives the estimate and the limit.
struct LimitError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Bytes one case holds at once while it is evaluated: inputs, golden outputs in
// double-double, the candidate's outputs, the rotary tables and the compared logits
// (logit_rows query rows; 0: all of them). An estimate within a small factor.
double estimated_case_bytes(const Case& c, std::size_t logit_rows);

// The memory a case may use: MemTotal of /proc/meminfo, or XPOSCHECK_MAX_MEMORY_MB
// when set and smaller. nullopt when neither is known.
std::optional<double> memory_limit_bytes();

// Throws LimitError naming the case, its estimate and the limit when the largest case
// of `cases` would need more memory than the machine has.
void check_case_memory(const std::vector<GridCase>& cases, std::size_t logit_rows);

// Throws LimitError naming the case, the estimate `bytes` of what it holds (`holds`,
// e.g. "inputs, golden outputs, tables and logits") and the limit when it exceeds the
// limit; the check of check_case_memory for a run with an estimate of its own.
void check_memory(const std::string& case_id, double bytes, const std::string& holds);

// "1.5 GiB", "320 MiB": sizes as people read them.
std::string human_bytes(double bytes);

}  // namespace xposcheck
