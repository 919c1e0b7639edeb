// Packed batches: every sequence is a case of its own on its rows of the packed tensors,
// so a packed batch's golden values are each sequence's golden values, bit for bit, and
// its rows sit at each sequence's own positions.
#include <catch2/catch.hpp>

#include "xposcheck/reference/case_json.hpp"
#include "xposcheck/reference/golden.hpp"
#include "xposcheck/reference/inputs.hpp"
#include "xposcheck/reference/packed.hpp"

using namespace xposcheck;
using Catch::Matchers::Contains;

namespace {

// Three sequences: plain, with memory, with memory and its own first position.
Case packed_case() {
  Case c;
  c.head_dim = 16;
  c.heads = 2;
  c.packed = PackedBatch::of({{7, 0, {}, {}}, {5, 3, {}, {}}, {1, 9, 40, {}}});
  c.seq_len = 13;
  c.mem_len = 12;
  return c;
}

}  // namespace

TEST_CASE("a packed batch's rows sit at each sequence's positions, in cu_seqlens order") {
  const Case c = packed_case();
  REQUIRE_NOTHROW(validate(c));
  CHECK(c.packed->first_query_row == std::vector<long>{0, 7, 12, 13});
  CHECK(c.packed->first_key_row == std::vector<long>{0, 7, 15, 25});
  // Sequence 1: keys -3..4 (its memory before its queries at 0..4); sequence 2: 40..49.
  CHECK(c.key_position(7) == -3);
  CHECK(c.key_position(14) == 4);
  CHECK(c.key_position(15) == 40);
  CHECK(c.query_position(6) == 6);
  CHECK(c.query_position(7) == 0);
  CHECK(c.query_position(12) == 49);
  CHECK(c.lowest_position() == -3);
  CHECK(c.highest_position() == 49);
  const Case one = c.sequence_case(1);
  CHECK(one.seq_len == 5);
  CHECK(one.mem_len == 3);
  CHECK(!one.packed);
  CHECK(one.centre() == 2);
}

TEST_CASE("a packed batch's golden values are its sequences' own, bit for bit, on both paths") {
  const Case c = packed_case();
  for (DType t : {DType::fp32, DType::bf16}) {
    const Inputs in = generate_inputs(c, 5, t);
    const Golden whole = golden_fast(c, in.q, in.k);
    const Golden exact = golden_exact(c, in.q, in.k);
    CHECK(whole.logit_rows.empty());
    CHECK(exact.q_out.data == whole.q_out.data);
    CHECK(exact.k_out.data == whole.k_out.data);
    for (long i = 0; i < c.packed->count(); ++i) {
      const Golden alone = golden_fast(c.sequence_case(i), sequence_queries(c, in.q, i), sequence_keys(c, in.k, i));
      CHECK(sequence_queries(c, whole.q_out, i).data == alone.q_out.data);
      CHECK(sequence_keys(c, whole.k_out, i).data == alone.k_out.data);
    }
    const Upstream up = generate_upstream(c, 5, t);
    const GoldenGradients g = golden_gradients_fast(c, up.g_q, up.g_k);
    const GoldenGradients alone =
        golden_gradients_fast(c.sequence_case(2), sequence_queries(c, up.g_q, 2), sequence_keys(c, up.g_k, 2));
    CHECK(sequence_keys(c, g.dk, 2).data == alone.dk.data);
  }
}

TEST_CASE("packed batches are validated as a whole and sequence by sequence") {
  Case c = packed_case();
  c.seq_len = 14;
  CHECK_THROWS_WITH(validate(c), Contains("its sequences hold N = 13"));
  c = packed_case();
  c.batch = 2;
  CHECK_THROWS_WITH(validate(c), Contains("must be 1 for a packed batch"));
  c = packed_case();
  c.packed = PackedBatch::of({{7, 0, {}, {}}, {0, 0, {}, {}}});
  c.seq_len = 7;
  c.mem_len = 0;
  CHECK_THROWS_WITH(validate(c), Contains("seq_len"));
  c = packed_case();
  c.packed = PackedBatch::of({{7, 0, {}, {}}, {5, 3, {}, {}}, {1, 9, 1L << 35, {}}});
  CHECK_THROWS_WITH(validate(c), Contains("packed sequence 2: invalid first_position"));
  c = packed_case();
  c.stream = StreamShape{1, 1};
  CHECK_THROWS_WITH(validate(c), Contains("cannot be a stream"));
}

TEST_CASE("a packed batch travels through JSON with every sequence's frame and centre resolved") {
  const Case c = packed_case();
  const nlohmann::json stored = case_to_json(c, CaseForm::stored);
  CHECK_FALSE(stored.at("packed")[0].contains("first_position"));
  CHECK(stored.at("packed")[2].at("first_position") == 40);
  const nlohmann::json resolved = case_to_json(c, CaseForm::resolved);
  CHECK(resolved.at("packed")[1].at("first_position") == -3);
  CHECK(resolved.at("packed")[1].at("center") == 2);
  const Case back = stored.get<Case>();
  REQUIRE(back.packed);
  CHECK(back.packed->sequences == c.packed->sequences);
  CHECK(case_id(back) == case_id(c));
  CHECK_FALSE(back.center);
  const Case from_resolved = resolved.get<Case>();
  for (long i = 0; i < 3; ++i) {
    CHECK(from_resolved.sequence_case(i).centre() == c.sequence_case(i).centre());
    CHECK(from_resolved.sequence_case(i).first_key_position() == c.sequence_case(i).first_key_position());
  }
}

TEST_CASE("rows_of and put_rows refuse rows a tensor does not have") {
  const Tensor t(Shape{2, 3, 4});
  CHECK_THROWS_WITH(rows_of(t, 2, 2), Contains("rows 2..3"));
  Tensor whole(Shape{2, 3, 4});
  CHECK_THROWS_WITH(put_rows(whole, Tensor(Shape{2, 2, 4}), 2), Contains("does not fit"));
  put_rows(whole, Tensor(Shape{2, 2, 4}, Values(16, 1.0)), 1);
  CHECK(whole.row(0)[0] == 0);
  CHECK(whole.row(1)[0] == 1);
  CHECK(whole.row(5)[3] == 1);
}

TEST_CASE("a packed batch read back from a file must hold the case's rows exactly") {
  nlohmann::json j = case_to_json(packed_case(), CaseForm::stored);
  j["seq_len"] = 14;
  CHECK_THROWS_WITH(j.get<Case>(), Contains("packed sequences hold N = 13 and M = 12, the case says seq_len 14"));
  j = case_to_json(packed_case(), CaseForm::stored);
  j["packed"][1]["seq_len"] = 0;
  CHECK_THROWS_WITH(j.get<Case>(), Contains("does not fit"));
  j = case_to_json(packed_case(), CaseForm::stored);
  j["packed"] = nlohmann::json::array();
  CHECK_THROWS_WITH(j.get<Case>(), Contains("non-empty array"));
}
