#pragma once
// Shared helpers of the harness tests: shipped grids, single cases, one-off runs.
#include <string>

#include <catch2/catch.hpp>

#include "xposcheck/cases/grid.hpp"
#include "xposcheck/harness/builtin_candidates.hpp"
#include "xposcheck/harness/sweep.hpp"
#include "xposcheck/harness/tolerance.hpp"

namespace xposcheck::testing {

inline Grid shipped_grid(const std::string& relative) {
  return load_grid(std::string(XPOSCHECK_SOURCE_DIR) + "/cases/" + relative);
}

inline GridCase grid_case(long d, long n, long m, bool xpos = true, Layout layout = Layout::half) {
  GridCase gc;
  gc.params.head_dim = d;
  gc.params.seq_len = n;
  gc.params.mem_len = m;
  gc.params.xpos = xpos;
  gc.params.layout = layout;
  gc.id = case_id(gc.params) + "-s1";
  return gc;
}

inline Tolerance default_tolerance(DType t) { return resolve_tolerance(t, {}, {}); }

inline Record run_builtin(const std::string& name, const GridCase& gc, DType t) {
  auto candidate = make_builtin(name);
  return evaluate_one(*candidate, gc, t, default_tolerance(t));
}

// A record's tensor by name; fails the test when it has none.
inline const TensorStats& tensor(const Record& r, const std::string& name) {
  for (const TensorStats& t : r.tensors) {
    if (t.name == name) return t;
  }
  FAIL("no tensor " << name);
  throw;
}

}  // namespace xposcheck::testing
