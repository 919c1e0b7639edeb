#pragma once
// A dense, row-major array of doubles. Candidate outputs of every dtype are held
// in it too: their values are exactly representable in the dtype.
#include <algorithm>
#include <cstddef>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "xposcheck/reference/large_blocks.hpp"

namespace xposcheck {

using Shape = std::vector<std::size_t>;

// std::allocator, except that growing without a value (vector(n), resize(n)) leaves
// the elements uninitialized: a tensor that is about to be written whole (inputs
// drawn, a file decoded, golden values computed) skips a pass over its memory, which
// was a fifth of the harness's CPU on the default grid through PyTorch. Large arrays
// come from the recycler (large_blocks.hpp).
template <class T>
struct NoFillAllocator {
  using value_type = T;
  NoFillAllocator() = default;
  template <class U>
  constexpr NoFillAllocator(const NoFillAllocator<U>&) noexcept {}
  static bool large(std::size_t n) { return n >= kLargeBlockBytes / sizeof(T); }
  T* allocate(std::size_t n) {
    if (!large(n)) return std::allocator<T>{}.allocate(n);
    if (n > std::size_t(-1) / sizeof(T)) throw std::bad_array_new_length();
    return static_cast<T*>(allocate_large_block(n * sizeof(T)));
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (large(n)) free_large_block(p);
    else std::allocator<T>{}.deallocate(p, n);
  }
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  friend bool operator==(NoFillAllocator, NoFillAllocator) noexcept { return true; }
};

// A tensor's elements; Values(n) holds n unwritten doubles, Values(n, 0.0) zeros.
using Values = std::vector<double, NoFillAllocator<double>>;
// Compared with a plain vector of doubles element by element (either way round).
inline bool operator==(const Values& a, const std::vector<double>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

std::size_t element_count(const Shape& shape);

// std::bad_alloc names nothing; this says what was being allocated and how large.
struct AllocationError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] void throw_allocation_error(std::string_view what, double bytes);
std::string shape_string(const Shape& shape);  // "[1, 4, 1024, 128]"

struct Tensor {
  Shape shape;
  Values data;

  Tensor() = default;
  explicit Tensor(Shape s);  // zeros; AllocationError naming the shape when memory runs out
  Tensor(Shape s, Values d) : shape(std::move(s)), data(std::move(d)) {}
  // Elements left unwritten, for a caller that writes every one before reading any.
  static Tensor unfilled(Shape s);

  std::size_t size() const { return data.size(); }
  std::size_t rank() const { return shape.size(); }
  // Rows of the last dimension: the product of all leading dimensions.
  std::size_t rows() const { return shape.empty() ? 0 : data.size() / shape.back(); }
  double* row(std::size_t r) { return data.data() + r * shape.back(); }
  const double* row(std::size_t r) const { return data.data() + r * shape.back(); }
};

}  // namespace xposcheck
