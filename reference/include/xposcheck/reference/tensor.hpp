#pragma once
// A dense, row-major array of doubles. Candidate outputs of every dtype are held
// in it too: their values are exactly representable in the dtype.
#include <cstddef>
#include <string>
#include <vector>

namespace xposcheck {

using Shape = std::vector<std::size_t>;

std::size_t element_count(const Shape& shape);
std::string shape_string(const Shape& shape);  // "[1, 4, 1024, 128]"

struct Tensor {
  Shape shape;
  std::vector<double> data;

  Tensor() = default;
  explicit Tensor(Shape s) : shape(std::move(s)), data(element_count(shape), 0.0) {}
  Tensor(Shape s, std::vector<double> d) : shape(std::move(s)), data(std::move(d)) {}

  std::size_t size() const { return data.size(); }
  std::size_t rank() const { return shape.size(); }
  // Rows of the last dimension: the product of all leading dimensions.
  std::size_t rows() const { return shape.empty() ? 0 : data.size() / shape.back(); }
  double* row(std::size_t r) { return data.data() + r * shape.back(); }
  const double* row(std::size_t r) const { return data.data() + r * shape.back(); }
};

}  // namespace xposcheck
