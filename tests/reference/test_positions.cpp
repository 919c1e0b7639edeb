// Explicit positions: any integers per row; golden values depend on each row's
// position alone, so they match the contiguous case wherever the positions coincide.
#include <catch2/catch.hpp>

#include <numeric>

#include "xposcheck/reference/golden.hpp"
#include "xposcheck/reference/inputs.hpp"

using namespace xposcheck;
using Catch::Matchers::Contains;

namespace {

Case contiguous(long n, long m) {
  Case c;
  c.head_dim = 32;
  c.seq_len = n;
  c.mem_len = m;
  return c;
}

}  // namespace

TEST_CASE("explicit positions equal to the frame's give the same golden values, bit for bit") {
  for (DType t : {DType::fp32, DType::bf16}) {
    const Case plain = contiguous(9, 4);
    Case listed = plain;
    std::vector<long> keys(static_cast<std::size_t>(plain.key_rows()));
    std::iota(keys.begin(), keys.end(), plain.first_key_position());
    listed.positions = PositionList::of(keys, plain.seq_len);
    REQUIRE(listed.centre() == plain.centre());
    const Inputs in = generate_inputs(plain, 1, t);
    const Golden a = golden_fast(plain, in.q, in.k), b = golden_fast(listed, in.q, in.k);
    CHECK(a.q_out.data == b.q_out.data);
    CHECK(a.k_out.data == b.k_out.data);
    CHECK(a.logits.data == b.logits.data);
    const Golden e = golden_exact(listed, in.q, in.k);
    CHECK(e.q_out.data == a.q_out.data);
    CHECK(e.k_out.data == a.k_out.data);
  }
}

TEST_CASE("a row's golden value depends on its position alone, in any order") {
  // Keys at the reversed positions 11..0: row n of the listed case is row 11 - n of the
  // contiguous one, with the same input row.
  Case plain = contiguous(12, 0);
  plain.center = 5;
  Case listed = plain;
  std::vector<long> keys(12);
  for (long n = 0; n < 12; ++n) keys[static_cast<std::size_t>(n)] = 11 - n;
  listed.positions = PositionList::of(keys, 12);
  const Inputs in = generate_inputs(listed, 3, DType::fp32);
  Tensor reversed_q = in.q, reversed_k = in.k;
  const std::size_t d = 32;
  for (std::size_t n = 0; n < 12; ++n) {
    std::copy_n(in.q.row(n), d, reversed_q.row(11 - n));
    std::copy_n(in.k.row(n), d, reversed_k.row(11 - n));
  }
  const Golden g = golden_fast(listed, in.q, in.k), h = golden_fast(plain, reversed_q, reversed_k);
  for (std::size_t n = 0; n < 12; ++n) {
    CHECK(std::equal(g.q_out.row(n), g.q_out.row(n) + d, h.q_out.row(11 - n)));
    CHECK(std::equal(g.k_out.row(n), g.k_out.row(n) + d, h.k_out.row(11 - n)));
  }
}

TEST_CASE("explicit positions are checked: one per key row, a bounded span, not on a stream") {
  Case c = contiguous(4, 2);
  c.positions = PositionList::of({0, 1, 2}, 4);
  CHECK_THROWS_WITH(validate(c), Contains("positions") && Contains("one position per key row"));
  c.positions = PositionList::of({0, 1, 2, 3, 4, 1L << 23}, 4);
  CHECK_THROWS_WITH(validate(c), Contains("span at most 2^22"));
  c.positions = PositionList::of({5, 1, 9, 3, 2, 8}, 4);
  CHECK_NOTHROW(validate(c));
  // The centre rules take the middle of the range: queries at 9, 3, 2, 8 -> 2 + 8 / 2.
  CHECK(c.centre() == 6);
  CHECK(c.query_position(0) == 9);
  CHECK(c.lowest_position() == 1);
  CHECK(c.highest_position() == 9);
  CHECK_THAT(case_id(c), Contains("-pos"));
  c.stream = StreamShape{2, 1};
  CHECK_THROWS_WITH(validate(c), Contains("stream"));
}
