#include "xposcheck/reference/tensor.hpp"

#include <stdexcept>

namespace xposcheck {

// A rank-0 shape holds one element, as in NumPy. The product is checked because
// shapes come from files and command lines, and a wrapped count would silently
// allocate the wrong amount.
std::size_t element_count(const Shape& shape) {
  std::size_t count = 1;
  for (std::size_t extent : shape) {
    if (__builtin_mul_overflow(count, extent, &count)) {
      throw std::overflow_error("element count of shape " + shape_string(shape) +
                                " overflows size_t");
    }
  }
  return count;
}

void throw_allocation_error(std::string_view what, double bytes) {
  throw AllocationError("out of memory allocating " + std::string(what) + ": " +
                        std::to_string(static_cast<unsigned long long>(bytes / 1048576)) + " MiB");
}

namespace {

Values allocate(const Shape& shape, bool zeros) {
  const std::size_t n = element_count(shape);
  try {
    return zeros ? Values(n, 0.0) : Values(n);
  } catch (const std::bad_alloc&) {
    throw_allocation_error("a tensor of shape " + shape_string(shape), 8.0 * static_cast<double>(n));
  }
}

}  // namespace

Tensor::Tensor(Shape s) : shape(std::move(s)), data(allocate(shape, true)) {}

Tensor Tensor::unfilled(Shape s) {
  Values v = allocate(s, false);
  return Tensor(std::move(s), std::move(v));
}

std::string shape_string(const Shape& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

}  // namespace xposcheck
