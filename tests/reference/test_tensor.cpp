// Tensors: zeros when asked for, and the storage left unfilled for writers that cover
// every element really is covered (poisoned memory never shows through).
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <catch2/catch.hpp>

#include "xposcheck/reference/golden.hpp"
#include "xposcheck/reference/inputs.hpp"
#include "xposcheck/reference/tensor.hpp"

using namespace xposcheck;

namespace {

// Allocates and frees blocks of NaN of each size, so that the allocator's next blocks
// of those sizes are likely to be these, dirty.
void poison_heap(const std::vector<std::size_t>& sizes) {
  std::vector<Values> blocks;
  for (std::size_t n : sizes)
    for (int copy = 0; copy < 3; ++copy) blocks.emplace_back(n, std::numeric_limits<double>::quiet_NaN());
}

bool same_bits(const Values& a, const Values& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

}  // namespace

TEST_CASE("Tensor(shape) holds zeros even where the heap was dirty", "[tensor]") {
  poison_heap({24, 4096});
  const Tensor small(Shape{2, 3, 4}), large(Shape{4096});
  CHECK(small.data == std::vector<double>(24, 0.0));
  CHECK(large.data == std::vector<double>(4096, 0.0));
  CHECK(Values(5, 0.0) == std::vector<double>(5, 0.0));
}

TEST_CASE("Tensor::unfilled has the shape's size", "[tensor]") {
  const Tensor t = Tensor::unfilled(Shape{3, 5, 7});
  CHECK(t.shape == Shape{3, 5, 7});
  CHECK(t.size() == 105);
  CHECK(t.rows() == 15);
  CHECK_THROWS_AS(Tensor::unfilled(Shape{1UL << 40, 1UL << 40}), std::overflow_error);
}

TEST_CASE("inputs and golden outputs never show unfilled storage", "[tensor]") {
  // Both layouts, partial rotary, the double-double and the plain logit routes.
  for (const Layout layout : {Layout::half, Layout::interleaved}) {
    for (const long rotary : {0L, 32L}) {
      for (const long mem : {50L, 20000L}) {  // 20000: past the double-double route
        Case c;
        c.head_dim = 64;
        if (rotary) c.rotary_dim = rotary;
        c.seq_len = 100;
        c.mem_len = mem;
        c.layout = layout;
        INFO("layout " << int(layout) << ", rotary " << rotary << ", M " << mem);
        const GoldenOptions options(true, 16);
        const Inputs clean_in = generate_inputs(c, 3, DType::bf16);
        const Golden clean = golden_fast(c, clean_in.q, clean_in.k, options);
        poison_heap({clean_in.q.size(), clean_in.k.size(), clean.logits.size(), 2 * clean_in.k.size()});
        const Inputs in = generate_inputs(c, 3, DType::bf16);
        poison_heap({clean_in.q.size(), clean_in.k.size(), clean.logits.size(), 2 * clean_in.k.size()});
        const Golden g = golden_fast(c, in.q, in.k, options);
        CHECK(same_bits(in.q.data, clean_in.q.data));
        CHECK(same_bits(in.k.data, clean_in.k.data));
        CHECK(same_bits(g.q_out.data, clean.q_out.data));
        CHECK(same_bits(g.k_out.data, clean.k_out.data));
        CHECK(same_bits(g.logits.data, clean.logits.data));
        CHECK_FALSE(std::isnan(g.logits.data.back()));
      }
    }
  }
}
