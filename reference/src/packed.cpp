#include "xposcheck/reference/packed.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace xposcheck {
namespace {

std::size_t leading_of(const Tensor& t) {
  std::size_t lead = 1;
  for (std::size_t d = 0; d + 2 < t.rank(); ++d) lead *= t.shape[d];
  return lead;
}

}  // namespace

Tensor rows_of(const Tensor& t, long first, long count) {
  if (t.rank() < 2 || first < 0 || count < 0 || static_cast<std::size_t>(first + count) > t.shape[t.rank() - 2])
    throw std::invalid_argument(fmt::format("rows {}..{} are not rows of a tensor shaped {}", first,
                                            first + count - 1, shape_string(t.shape)));
  Shape shape = t.shape;
  const std::size_t rows = shape[shape.size() - 2], width = shape.back();
  shape[shape.size() - 2] = static_cast<std::size_t>(count);
  Tensor out(shape);
  for (std::size_t l = 0; l < leading_of(t); ++l) {
    const double* from = t.row(l * rows + static_cast<std::size_t>(first));
    std::copy(from, from + static_cast<std::size_t>(count) * width, out.row(l * static_cast<std::size_t>(count)));
  }
  return out;
}

void put_rows(Tensor& whole, const Tensor& part, long first) {
  const std::size_t rank = whole.rank();
  const bool fits = rank >= 2 && part.rank() == rank && part.shape.back() == whole.shape.back() &&
                    first >= 0 && static_cast<std::size_t>(first) + part.shape[rank - 2] <= whole.shape[rank - 2] &&
                    leading_of(part) == leading_of(whole);
  if (!fits)
    throw std::invalid_argument(fmt::format("a tensor shaped {} does not fit a tensor shaped {} from row {}",
                                            shape_string(part.shape), shape_string(whole.shape), first));
  const std::size_t rows = whole.shape[rank - 2], count = part.shape[rank - 2], width = whole.shape.back();
  for (std::size_t l = 0; l < leading_of(whole); ++l) {
    const double* from = part.row(l * count);
    std::copy(from, from + count * width, whole.row(l * rows + static_cast<std::size_t>(first)));
  }
}

}  // namespace xposcheck
