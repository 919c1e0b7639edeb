// Expansion of inline grids: counts, order, sub-grids, excludes, rotary spellings and
// duplicate removal.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "xposcheck/cases/grid.hpp"

using namespace xposcheck;

namespace {
std::vector<std::string> ids(const Grid& g) {
  std::vector<std::string> out;
  for (const GridCase& c : g.cases) out.push_back(c.id);
  return out;
}
}  // namespace

TEST_CASE("a single [axes] table expands in fixed axis order, seeds fastest") {
  Grid g = parse_grid(R"(name = "t"
seeds = [1, 2]
[axes]
layout = ["half", "interleaved"]
seq_len = [1, 7]
head_dim = [32, 64]
)", "t.toml");
  REQUIRE(g.cases.size() == 16);
  // head_dim varies slowest, then seq_len, then layout, whatever order the keys are written in.
  std::vector<std::string> first = {"D32-N1-s1", "D32-N1-s2", "D32-N1-interleaved-s1",
                                    "D32-N1-interleaved-s2", "D32-N7-s1"};
  std::vector<std::string> all = ids(g);
  CHECK(std::vector<std::string>(all.begin(), all.begin() + 5) == first);
  CHECK(g.cases.back().id == "D64-N7-interleaved-s2");
  CHECK(g.cases.back().seed == 2);
  CHECK(g.cases.back().params.head_dim == 64);
  CHECK(g.cases.back().params.layout == Layout::interleaved);
  CHECK(g.name == "t");
  CHECK(g.source == "t.toml");
  CHECK(g.dtypes == std::vector<DType>{DType::fp32, DType::bf16, DType::fp16});
}

TEST_CASE("scalars, defaults and the name taken from the source") {
  Grid g = parse_grid("dtypes = \"bf16\"\n[axes]\nhead_dim = 8\nseq_len = 3\n", "dir/small-grid.toml");
  REQUIRE(g.cases.size() == 1);
  const Case& c = g.cases[0].params;
  CHECK(g.name == "small-grid");
  CHECK(g.dtypes == std::vector<DType>{DType::bf16});
  CHECK(g.cases[0].seed == 1);
  CHECK(g.cases[0].id == "D8-N3-s1");
  CHECK(c.mem_len == 0);
  CHECK(c.xpos);
  CHECK_FALSE(c.rotary_dim.has_value());
  CHECK_FALSE(c.center.has_value());
  CHECK(c.base == 10000.0);
  CHECK(c.scale_base == 512.0);
}

TEST_CASE("every axis reaches the case") {
  Grid g = parse_grid(R"([axes]
head_dim = 64
rotary_dim = 32
seq_len = 100
mem_len = 10
layout = "interleaved"
xpos = false
scale_base = 256
base = 500000
base_rescale = 2.5
interpolation = 4
center = -3
batch = 2
heads = 3
)", "t.toml");
  REQUIRE(g.cases.size() == 1);
  const Case& c = g.cases[0].params;
  CHECK(c.head_dim == 64);
  CHECK(c.rotary_dim == 32);
  CHECK(c.seq_len == 100);
  CHECK(c.mem_len == 10);
  CHECK(c.layout == Layout::interleaved);
  CHECK_FALSE(c.xpos);
  CHECK(c.scale_base == 256.0);
  CHECK(c.base == 500000.0);
  CHECK(c.base_rescale == 2.5);
  CHECK(c.interpolation == 4.0);
  CHECK(c.center == -3);
  CHECK(c.batch == 2);
  CHECK(c.heads == 3);
}

TEST_CASE("sub-grids inherit [axes], override keys, and are joined in order") {
  Grid g = parse_grid(R"([axes]
head_dim = 64
seq_len = [1, 7]
mem_len = [0, 100]

[[grid]]
mem_len = 0

[[grid]]
seq_len = 4096
head_dim = 128
)", "t.toml");
  CHECK(ids(g) == std::vector<std::string>{"D64-N1-s1", "D64-N7-s1", "D128-N4096-s1",
                                           "D128-N4096-M100-s1"});
}

TEST_CASE("an empty [[grid]] is [axes] as written") {
  Grid g = parse_grid("[axes]\nhead_dim = 64\nseq_len = [1, 2]\n[[grid]]\n[[grid]]\nmem_len = 5\n",
                      "t.toml");
  CHECK(ids(g) == std::vector<std::string>{"D64-N1-s1", "D64-N2-s1", "D64-N1-M5-s1", "D64-N2-M5-s1"});
}

TEST_CASE("excludes drop cases matching every key, any listed value") {
  Grid g = parse_grid(R"([axes]
head_dim = 64
seq_len = [1, 7, 64]
mem_len = [0, 1, 100]

[[exclude]]
seq_len = 1
mem_len = [1, 100]

[[exclude]]
mem_len = 100
)", "t.toml");
  // 9 combinations; N1-M1 and N1-M100 by the first, N7-M100 and N64-M100 by the second.
  CHECK(ids(g) == std::vector<std::string>{"D64-N1-s1", "D64-N7-s1", "D64-N7-M1-s1",
                                           "D64-N64-s1", "D64-N64-M1-s1"});
}

TEST_CASE("excludes run before validation, so they can drop invalid combinations") {
  Grid g = parse_grid(R"([axes]
head_dim = [64, 128]
rotary_dim = [32, 96]
seq_len = 8
[[exclude]]
head_dim = 64
rotary_dim = 96
)", "t.toml");
  CHECK(ids(g) == std::vector<std::string>{"D64-N8-R32-s1", "D128-N8-R32-s1", "D128-N8-R96-s1"});
}

TEST_CASE("rotary_dim \"full\" and rotary_fraction") {
  Grid full = parse_grid("[axes]\nhead_dim = [64, 128]\nrotary_dim = [\"full\", 32]\nseq_len = 8\n",
                         "t.toml");
  CHECK(ids(full) == std::vector<std::string>{"D64-N8-s1", "D64-N8-R32-s1", "D128-N8-s1",
                                              "D128-N8-R32-s1"});
  CHECK_FALSE(full.cases[0].params.rotary_dim.has_value());

  Grid fraction = parse_grid(
      "[axes]\nhead_dim = [64, 128]\nrotary_fraction = [1, 0.5, 0.25]\nseq_len = 8\n", "t.toml");
  std::vector<long> rotary;
  for (const GridCase& c : fraction.cases) rotary.push_back(c.params.rotary());
  CHECK(rotary == std::vector<long>{64, 32, 16, 128, 64, 32});
}

TEST_CASE("excludes match effective values: \"full\" is R = D, \"default\" is floor(N/2)") {
  Grid g = parse_grid(R"([axes]
head_dim = 64
rotary_fraction = [1.0, 0.5]
seq_len = 9
center = ["default", 0]
[[exclude]]
rotary_dim = "full"
center = 4
)", "t.toml");
  CHECK(ids(g) == std::vector<std::string>{"D64-N9-c0-s1", "D64-N9-R32-s1", "D64-N9-R32-c0-s1"});
}

TEST_CASE("duplicates are removed, the first kept") {
  Grid g = parse_grid(R"(seeds = [3, 3, 4]
[axes]
head_dim = 64
seq_len = [8, 8, 16]
rotary_dim = ["full", 64]
center = ["default", 4]
[[grid]]
[[grid]]
seq_len = [16, 32]
)", "t.toml");
  // "full" = 64 and "default" = floor(8/2) = 4 are the same case; so are repeated
  // lengths, sub-grids that overlap, and a repeated seed.
  CHECK(ids(g) == std::vector<std::string>{"D64-N8-s3", "D64-N8-s4", "D64-N16-s3",
                                           "D64-N16-s4", "D64-N16-c4-s3", "D64-N16-c4-s4",
                                           "D64-N32-s3", "D64-N32-s4", "D64-N32-c4-s3",
                                           "D64-N32-c4-s4"});
  CHECK_FALSE(g.cases[0].params.rotary_dim.has_value());
  CHECK_FALSE(g.cases[0].params.center.has_value());
}

TEST_CASE("dtype names and aliases, deduplicated in order") {
  Grid g = parse_grid("dtypes = [\"fp16\", \"float32\", \"float16\"]\n[axes]\nhead_dim = 2\nseq_len = 1\n",
                      "t.toml");
  CHECK(g.dtypes == std::vector<DType>{DType::fp16, DType::fp32});
}

TEST_CASE("estimated_cost counts outputs and sampled logits") {
  Case c;
  c.head_dim = 128;
  c.seq_len = 1024;
  c.mem_len = 100;
  // (N + M+N) * D = 274,944 outputs; 512 sampled rows x 1124 keys x 128 = 73,662,464.
  CHECK(estimated_cost(c) == Approx(73.937408).epsilon(1e-12));
  c.batch = 2;
  c.heads = 3;
  CHECK(estimated_cost(c) == Approx(6 * 73.937408).epsilon(1e-12));
  Case one;
  one.head_dim = 64;
  one.seq_len = 1;
  one.mem_len = 8192;
  // 8194 rows of outputs plus one query row against 8193 keys.
  CHECK(estimated_cost(one) == Approx((8194.0 + 8193.0) * 64 * 1e-6).epsilon(1e-12));
}

TEST_CASE("prefill, steps and step_rows make a stream whose length they give") {
  const Grid g = parse_grid(R"([axes]
head_dim = 32
prefill = [1, 10]
steps = 8
step_rows = [1, 4]
mem_len = 3
[[exclude]]
prefill = 10
steps = 8
step_rows = 4
)", "s");
  REQUIRE(g.cases.size() == 3);
  const Case& c = g.cases[1].params;
  REQUIRE(c.stream);
  CHECK(c.stream->prefill == 1);
  CHECK(c.stream->step_rows == 4);
  CHECK(c.seq_len == 33);
  CHECK(c.stream_steps() == 8);
  CHECK(g.cases[1].id == "D32-N33-M3-stream1+8x4-s1");
  CHECK(g.cases[2].params.seq_len == 18);
  // The stream is part of the fingerprint: the same lengths in one call differ.
  const Grid one_call = parse_grid("[axes]\nhead_dim = 32\nseq_len = [9, 33, 18]\nmem_len = 3\n", "s");
  CHECK(one_call.fingerprint != g.fingerprint);
}

TEST_CASE("positions = \"random:MAX\" gives every row a drawn position, the same every load") {
  const std::string text = "[axes]\nhead_dim = 16\nseq_len = 40\nmem_len = 8\npositions = [\"default\", \"random:300\"]\n";
  const Grid g = parse_grid(text, "p");
  REQUIRE(g.cases.size() == 2);
  CHECK_FALSE(g.cases[0].params.positions);
  const auto& p = g.cases[1].params.positions;
  REQUIRE(p);
  CHECK(p->keys.size() == 48);
  CHECK(p->lowest >= 0);
  CHECK(p->highest < 300);
  CHECK(g.cases[1].id.find("-pos") != std::string::npos);
  CHECK(parse_grid(text, "p").cases[1].params.positions->keys == p->keys);
  CHECK(parse_grid(text, "p").fingerprint == g.fingerprint);
}

TEST_CASE("passes default to forward and enter the fingerprint only when they differ") {
  const std::string axes = "[axes]\nhead_dim = 8\nseq_len = 3\n";
  const Grid plain = parse_grid(axes, "g");
  const Grid forward = parse_grid("passes = \"forward\"\n" + axes, "g");
  const Grid both = parse_grid("passes = [\"forward\", \"backward\", \"forward\"]\n" + axes, "g");
  CHECK(plain.passes == std::vector<Pass>{Pass::forward});
  CHECK(both.passes == std::vector<Pass>{Pass::forward, Pass::backward});
  CHECK(forward.fingerprint == plain.fingerprint);
  CHECK(both.fingerprint != plain.fingerprint);
}

TEST_CASE("packed = \"N+M@P, ...\" makes one packed batch whose sums are N and M") {
  const Grid g = parse_grid("[axes]\nhead_dim = 16\npacked = [\"64, 17+8, 1+100@20\", \"5,5\"]\nfirst_position = 0\n", "p");
  REQUIRE(g.cases.size() == 2);
  const Case& c = g.cases[0].params;
  REQUIRE(c.packed);
  CHECK(c.seq_len == 82);
  CHECK(c.mem_len == 108);
  CHECK(c.packed->count() == 3);
  CHECK(c.packed->first_query_row == std::vector<long>{0, 64, 81, 82});
  CHECK(c.packed->first_key_row == std::vector<long>{0, 64, 89, 190});
  CHECK(g.cases[0].id == "D16-N82-M108-o0-pack64_17+8_1+100o20-s1");
  // The grid's frame applies to every sequence that gives none; @P wins.
  CHECK(c.sequence_case(1).first_key_position() == 0);
  CHECK(c.sequence_case(2).first_key_position() == 20);
  CHECK(g.cases[1].params.seq_len == 10);
  // The same rows unpacked are another case.
  CHECK(parse_grid("[axes]\nhead_dim = 16\nseq_len = 82\nmem_len = 108\nfirst_position = 0\n", "p").fingerprint !=
        parse_grid("[axes]\nhead_dim = 16\npacked = \"64, 17+8, 1+100@20\"\nfirst_position = 0\n", "p").fingerprint);
}
