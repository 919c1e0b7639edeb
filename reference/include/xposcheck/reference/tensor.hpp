#pragma once
// A dense, row-major array of doubles. Candidate outputs of every dtype are held
// in it too: their values are exactly representable in the dtype.
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace xposcheck {

using Shape = std::vector<std::size_t>;

std::size_t element_count(const Shape& shape);

// std::bad_alloc names nothing; this says what was being allocated and how large.
struct AllocationError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] void throw_allocation_error(std::string_view what, double bytes);
std::string shape_string(const Shape& shape);  // "[1, 4, 1024, 128]"

struct Tensor {
  Shape shape;
  std::vector<double> data;

  Tensor() = default;
  explicit Tensor(Shape s);  // zeros; AllocationError naming the shape when memory runs out
  Tensor(Shape s, std::vector<double> d) : shape(std::move(s)), data(std::move(d)) {}

  std::size_t size() const { return data.size(); }
  std::size_t rank() const { return shape.size(); }
  // Rows of the last dimension: the product of all leading dimensions.
  std::size_t rows() const { return shape.empty() ? 0 : data.size() / shape.back(); }
  double* row(std::size_t r) { return data.data() + r * shape.back(); }
  const double* row(std::size_t r) const { return data.data() + r * shape.back(); }
};

}  // namespace xposcheck
