#pragma once
// A record naming its candidate, case, dtype and pass, before any verdict.
#include <string>

#include "xposcheck/cases/grid.hpp"
#include "xposcheck/harness/record.hpp"

namespace xposcheck {

inline Record blank_record(const std::string& candidate, const GridCase& gc, DType dtype, Pass pass) {
  Record r;
  r.candidate = candidate;
  r.case_id = gc.id;
  r.params = gc.params;
  r.seed = gc.seed;
  r.dtype = dtype;
  r.pass = pass;
  return r;
}

}  // namespace xposcheck
