// The sweep's memory, checked before anything runs (docs/grids.md, Limits).
#include <algorithm>

#include <fmt/format.h>

#include "xposcheck/harness/limits.hpp"
#include "xposcheck/harness/sweep.hpp"

namespace xposcheck {

void check_sweep_memory(const Grid& grid, const std::vector<std::unique_ptr<Candidate>>& candidates,
                        const SweepOptions& options) {
  const std::vector<Pass>& passes = options.passes.empty() ? grid.passes : options.passes;
  const std::size_t logit_rows = std::max<std::size_t>(options.max_logit_rows, 1);
  double largest = -1;
  std::string largest_id, holds;
  for (const GridCase& gc : grid.cases) {
    const Case& c = gc.params;
    for (Pass pass : passes) {
      const bool blocks = judged_in_blocks(c, pass, logit_rows, options.block_above_bytes);
      const auto whole = std::find_if(candidates.begin(), candidates.end(),
                                      [&](const auto& candidate) {
                                        return !blocks || !(candidate->rotates_rows() || candidate->takes_input_rows());
                                      });
      const double bytes = whole != candidates.end() ? estimated_case_bytes(c, logit_rows)
                                                     : estimated_block_bytes(c, logit_rows, candidates.size());
      if (bytes <= largest) continue;
      largest = bytes;
      largest_id = gc.id;
      if (whole == candidates.end())
        holds = "blocks of rows for every candidate";
      else if (blocks)
        holds = fmt::format("the whole case for {}, which cannot be given it a block of rows at a time", (*whole)->name());
      else
        holds = "inputs, golden outputs, tables and logits";
    }
  }
  if (largest >= 0) check_memory(largest_id, largest, holds);
}

}  // namespace xposcheck
