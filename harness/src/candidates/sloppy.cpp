#include "candidates/sloppy.hpp"

#include <cmath>

namespace xposcheck::candidates {

PositionTable SloppyCandidate::table(const Frequencies& f, const Case& c, DType dtype, long position,
                                     double centre, bool query) {
  PositionTable t = RecipeCandidate::table(f, c, dtype, position, centre, query);
  const double quantum = std::ldexp(1.0, -22);
  for (auto* column : {&t.cos, &t.sin}) {
    for (double& v : *column) v = round_to(dtype, std::trunc(v / quantum) * quantum);
  }
  return t;
}

}  // namespace xposcheck::candidates
