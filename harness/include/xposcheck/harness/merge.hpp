#pragma once
// Combines the results of sharded (or otherwise split) sweeps of one grid into one
// results file (docs/sharding.md).
#include <stdexcept>
#include <string>
#include <vector>

#include "xposcheck/harness/results.hpp"

namespace xposcheck {

struct MergeInput {
  std::string source;   // the file name, for messages
  Results results;
};

// Inputs that do not belong together; what() names the files and what differs.
struct MergeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Refuses inputs of different grids, tool versions, tolerances, candidates or dtypes,
// shards of different counts, and a record present twice with different content
// (timings aside). The merged run is unsharded when the inputs cover every shard,
// "K1+K2/N" otherwise. Records are sorted by case_order (the grid's case ids) or,
// when it is empty, by case id.
Results merge_results(const std::vector<MergeInput>& inputs, const std::vector<std::string>& case_order = {});

}  // namespace xposcheck
