// golden_fast_blocks and the pieces it is made of (TableSeeds slices, generate_rows)
// against the whole-tensor golden_fast: bit for bit, on cases whose lengths are not
// multiples of the block size, through both logits routes.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cstring>
#include <string>

#include "xposcheck/reference/golden.hpp"
#include "xposcheck/reference/golden_blocks.hpp"
#include "xposcheck/reference/inputs.hpp"
#include "xposcheck/reference/tables.hpp"

namespace {

using namespace xposcheck;

// The first differing element of a against b (bitwise), or "" when identical.
std::string first_difference(const char* name, const Values& a,
                             const Values& b) {
  if (a.size() != b.size())
    return std::string(name) + ": " + std::to_string(a.size()) + " vs " + std::to_string(b.size()) + " elements";
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(double)) != 0)
      return std::string(name) + "[" + std::to_string(i) + "]: " + std::to_string(a[i]) + " vs " +
             std::to_string(b[i]);
  return "";
}

// The blocks put back together as whole tensors: [bh][rows][D] and [bh][K][keys].
struct Assembled {
  Values q_in, k_in, q_out, k_out, logits;
  long blocks = 0;
};

Assembled assemble(const Case& c, std::uint64_t seed, DType t, const GoldenOptions& o,
                   long block_rows, std::vector<long>& rows) {
  const long bh = c.batch * c.heads, d = c.head_dim, n = c.seq_len, keys = c.key_rows();
  const std::size_t k_rows = logit_rows(n, o.max_logit_rows).size();
  Assembled a;
  a.q_in.resize(std::size_t(bh * n * d));
  a.q_out.resize(a.q_in.size());
  a.k_in.resize(std::size_t(bh * keys * d));
  a.k_out.resize(a.k_in.size());
  a.logits.resize(o.logits ? std::size_t(bh) * k_rows * std::size_t(keys) : 0);
  const BlockInputs inputs = [&](GoldenBlock& b) {
    generate_rows(c, seed, t, b.query, b.first, b.count, b.in.data());
  };
  const BlockSink sink = [&](GoldenBlock& b) {
    ++a.blocks;
    const long total = b.query ? n : keys;
    for (long h = 0; h < bh; ++h) {
      const auto from = std::size_t(h * b.count * d), to = std::size_t((h * total + b.first) * d);
      std::copy_n(&b.in[from], b.count * d, &(b.query ? a.q_in : a.k_in)[to]);
      std::copy_n(&b.out[from], b.count * d, &(b.query ? a.q_out : a.k_out)[to]);
    }
    if (b.query || !o.logits) return;
    for (std::size_t r = 0; r < bh * k_rows; ++r)
      std::copy_n(&b.logits[r * b.count], b.count, &a.logits[r * keys + b.first]);
  };
  rows = golden_fast_blocks(c, inputs, o, block_rows, sink);
  return a;
}

struct BlockCase {
  const char* what;
  Case c;
  GoldenOptions options;
  long block_rows;
};

Case make(long d, long n, long m, long batch, long heads) {
  Case c;
  c.head_dim = d;
  c.seq_len = n;
  c.mem_len = m;
  c.batch = batch;
  c.heads = heads;
  return c;
}

std::vector<BlockCase> block_cases() {
  std::vector<BlockCase> cases;
  Case c = make(16, 50, 23, 2, 2);  // 50 = 7*7 + 1 queries, 73 = 10*7 + 3 keys
  c.rotary_dim = 10;
  c.layout = Layout::interleaved;
  cases.push_back({"double-double logits, partial rotary, interleaved", c, {}, 7});
  GoldenOptions plain;
  plain.double_double_logits = false;
  cases.push_back({"plain logits asked for, partial rotary, interleaved", c, plain, 7});
  GoldenOptions judging = plain;
  judging.correctly_rounded = false;
  cases.push_back({"the judging route: outputs from the tables' high words, plain logits", c, judging, 7});
  c = make(64, 40, 5000, 1, 2);  // 2 x 40 x 5040 x 64 multiply-adds: the plain route
  cases.push_back({"plain logits", c, {}, 333});
  c = make(8, 600, 100, 1, 1);   // 17 sampled rows, blocks of 64 (600 = 9*64 + 24)
  cases.push_back({"sampled rows", c, {true, 17}, 64});
  c = make(8, 9, 30, 1, 3);
  c.xpos = false;
  c.center = 4;
  cases.push_back({"no xpos, no logits, one row per block", c, {false, 0}, 1});
  c = make(12, 5, 1000, 1, 1);   // the whole case in one block
  cases.push_back({"one block", c, {}, 4096});
  return cases;
}

}  // namespace

TEST_CASE("golden_fast_blocks is golden_fast bit for bit") {
  for (const BlockCase& bc : block_cases()) {
    INFO(bc.what);
    const DType t = DType::bf16;
    std::vector<long> rows;
    const Assembled a = assemble(bc.c, 5, t, bc.options, bc.block_rows, rows);
    const Inputs in = generate_inputs(bc.c, 5, t);
    const Golden g = golden_fast(bc.c, in.q, in.k, bc.options);
    const long blocks = (bc.c.seq_len + bc.block_rows - 1) / bc.block_rows +
                        (bc.c.key_rows() + bc.block_rows - 1) / bc.block_rows;
    CHECK(a.blocks == blocks);
    CHECK(rows == g.logit_rows);
    CHECK(first_difference("q_in", a.q_in, in.q.data) == "");
    CHECK(first_difference("k_in", a.k_in, in.k.data) == "");
    CHECK(first_difference("q_out", a.q_out, g.q_out.data) == "");
    CHECK(first_difference("k_out", a.k_out, g.k_out.data) == "");
    CHECK(first_difference("logits", a.logits, g.logits.data) == "");
    CHECK(a.logits.size() == (bc.options.logits ? g.logits.size() : 0));
  }
}

namespace {

// Rows `rows` of every (batch, head) of a whole tensor [bh][total][D], as [bh][rows][D].
Values pick_rows(const Values& whole, long bh, long total, long d, const std::vector<long>& rows) {
  Values out(std::size_t(bh) * rows.size() * std::size_t(d));
  const long n = static_cast<long>(rows.size());
  for (long h = 0; h < bh; ++h)
    for (long i = 0; i < n; ++i)
      std::copy_n(&whole[std::size_t((h * total + rows[std::size_t(i)]) * d)], d, &out[std::size_t((h * n + i) * d)]);
  return out;
}

}  // namespace

TEST_CASE("golden_fast_rows gives chosen rows of golden_fast bit for bit") {
  for (const BlockCase& bc : block_cases()) {
    INFO(bc.what);
    const Case& c = bc.c;
    const long bh = c.batch * c.heads, d = c.head_dim;
    const Inputs in = generate_inputs(c, 11, DType::fp16);
    for (const bool rounded : {true, false}) {
      INFO("correctly rounded: " << rounded);
      GoldenOptions options(false, 0);
      options.correctly_rounded = rounded;
      const Golden g = golden_fast(c, in.q, in.k, options);
      const std::vector<long> q_rows{0, c.seq_len / 2, c.seq_len - 1};
      const std::vector<long> k_rows{0, 1, c.mem_len, c.key_rows() - 1};
      CHECK(first_difference("q_out",
                             golden_fast_rows(c, true, q_rows, pick_rows(in.q.data, bh, c.seq_len, d, q_rows), rounded),
                             pick_rows(g.q_out.data, bh, c.seq_len, d, q_rows)) == "");
      CHECK(first_difference("k_out",
                             golden_fast_rows(c, false, k_rows, pick_rows(in.k.data, bh, c.key_rows(), d, k_rows), rounded),
                             pick_rows(g.k_out.data, bh, c.key_rows(), d, k_rows)) == "");
    }
  }
  const Case c = make(8, 4, 4, 1, 2);
  CHECK_THROWS_AS(golden_fast_rows(c, true, {4}, Values(16)), std::invalid_argument);
  CHECK_THROWS_AS(golden_fast_rows(c, false, {-1}, Values(16)), std::invalid_argument);
  CHECK_THROWS_AS(golden_fast_rows(c, false, {0, 1}, Values(16)), std::invalid_argument);
  CHECK(golden_fast_rows(c, true, {}, Values()).empty());
}

TEST_CASE("a table slice holds the whole table's rows") {
  Case c = make(32, 700, 3000, 1, 1);
  const long first = c.first_key_position(), last = c.last_position();
  const RotaryTables whole(c, first, last);
  const TableSeeds seeds(c, first, last);
  // 3700 positions: steps of 256 rows; slices inside one step, across steps, at the ends.
  for (const auto& [from, to] : {std::pair{first, first}, std::pair{first + 250, first + 600},
                                std::pair{last - 5, last}, std::pair{first, last}}) {
    const RotaryTables slice(seeds, from, to);
    for (long p = from; p <= to; ++p)
      for (long j = 0; j < c.pairs(); ++j) {
        const double a[4] = {whole.cos(p, j).hi, whole.sin(p, j).lo, whole.scale(p, j).lo, whole.inv_scale(p, j).hi};
        const double b[4] = {slice.cos(p, j).hi, slice.sin(p, j).lo, slice.scale(p, j).lo, slice.inv_scale(p, j).hi};
        REQUIRE(std::memcmp(a, b, sizeof a) == 0);
      }
  }
  CHECK_THROWS_AS(RotaryTables(seeds, first - 1, first), std::invalid_argument);
  CHECK_THROWS_AS(RotaryTables(seeds, last, last + 1), std::invalid_argument);
  CHECK_THROWS_AS(RotaryTables(seeds, first + 2, first + 1), std::invalid_argument);
}

TEST_CASE("golden_fast_blocks and generate_rows refuse what they cannot do") {
  const Case c = make(8, 4, 4, 1, 1);
  const BlockSink sink = [](GoldenBlock&) {};
  const BlockInputs inputs = [](GoldenBlock&) {};
  CHECK_THROWS_AS(golden_fast_blocks(c, inputs, {}, 0, sink), std::invalid_argument);
  std::vector<double> out(64);
  CHECK_THROWS_AS(generate_rows(c, 1, DType::fp32, true, 2, 3, out.data()), std::invalid_argument);
  CHECK_THROWS_AS(generate_rows(c, 1, DType::fp32, false, -1, 2, out.data()), std::invalid_argument);
}

TEST_CASE("blocks hold about kGoldenBlockElements elements") {
  CHECK(golden_block_rows(make(128, 64, 65472, 1, 8)) == 512);
  CHECK(golden_block_rows(make(8, 1, 0, 1, 1)) == 65536);
  CHECK(golden_block_rows(make(1 << 20, 1, 0, 1, 1)) == 1);
}
