// The grid files shipped in cases/: they load, and each covers what it promises.
#include <catch2/catch.hpp>

#include <algorithm>
#include <iostream>
#include <set>
#include <string>

#include "xposcheck/cases/grid.hpp"

using namespace xposcheck;

namespace {
Grid shipped(const std::string& relative) {
  return load_grid(std::string(XPOSCHECK_SOURCE_DIR) + "/cases/" + relative);
}

template <class P>
bool any_case(const Grid& g, P p) {
  return std::any_of(g.cases.begin(), g.cases.end(), [&](const GridCase& c) { return p(c.params); });
}

template <class F>
long max_of(const Grid& g, F f) {
  long m = 0;
  for (const GridCase& c : g.cases) m = std::max(m, f(c.params));
  return m;
}

double output_elements(const Grid& g) {
  double total = 0;
  for (const GridCase& c : g.cases) total += static_cast<double>(c.params.output_elements());
  return total;
}

void check_ids_unique(const Grid& g) {
  std::set<std::string> ids;
  for (const GridCase& c : g.cases) ids.insert(c.id);
  CHECK(ids.size() == g.cases.size());
}

void check_covers_features(const Grid& g) {
  CHECK(any_case(g, [](const Case& c) { return c.layout == Layout::half; }));
  CHECK(any_case(g, [](const Case& c) { return c.layout == Layout::interleaved; }));
  CHECK(any_case(g, [](const Case& c) { return c.rotary() < c.head_dim; }));
  CHECK(any_case(g, [](const Case& c) { return c.xpos; }));
  CHECK(any_case(g, [](const Case& c) { return !c.xpos; }));
  CHECK(any_case(g, [](const Case& c) { return c.seq_len % 2 == 1 && c.seq_len > 1; }));
  CHECK(any_case(g, [](const Case& c) { return c.seq_len % 2 == 0; }));
  CHECK(any_case(g, [](const Case& c) { return c.mem_len == 0; }));
  CHECK(any_case(g, [](const Case& c) { return c.mem_len > 0; }));
  CHECK(g.dtypes.size() == 3);
}
}  // namespace

TEST_CASE("smoke.toml is small and covers every feature") {
  Grid g = shipped("smoke.toml");
  CHECK(g.name == "smoke");
  CHECK(g.cases.size() == 30);
  CHECK(max_of(g, [](const Case& c) { return c.seq_len; }) <= 256);
  CHECK(max_of(g, [](const Case& c) { return c.mem_len; }) <= 100);
  CHECK(max_of(g, [](const Case& c) { return c.head_dim; }) <= 64);
  check_covers_features(g);
  check_ids_unique(g);
  CHECK(any_case(g, [](const Case& c) { return c.batch == 2 && c.heads == 3; }));
  CHECK(any_case(g, [](const Case& c) { return c.base_rescale != 1.0; }));
  CHECK(any_case(g, [](const Case& c) { return c.interpolation != 1.0; }));
  CHECK(output_elements(g) < 1e6);
}

TEST_CASE("default.toml reaches where dtypes break, within its budget") {
  Grid g = shipped("default.toml");
  CHECK(g.name == "default");
  check_covers_features(g);
  check_ids_unique(g);
  CHECK(max_of(g, [](const Case& c) { return c.seq_len; }) >= 16384);
  CHECK(max_of(g, [](const Case& c) { return c.mem_len; }) >= 8192);
  // Across the fp16 XPOS envelope (query scale ~7,900, key scale ~9,000) in both layouts.
  for (long n : {7680L, 8191L, 9000L, 9728L, 12288L, 16384L}) {
    for (Layout l : {Layout::half, Layout::interleaved}) {
      CHECK(any_case(g, [&](const Case& c) {
        return c.seq_len == n && c.layout == l && c.xpos && c.head_dim == 128 && c.mem_len == 0;
      }));
    }
  }
  CHECK(any_case(g, [](const Case& c) { return c.seq_len >= 9000 && c.rotary() < c.head_dim; }));
  CHECK(any_case(g, [](const Case& c) { return c.seq_len >= 9000 && !c.xpos; }));
  CHECK(any_case(g, [](const Case& c) { return c.seq_len >= 16384 && c.mem_len >= 8192; }));
  // Long cases stay at batch = heads = 1, or the budget would not hold.
  CHECK_FALSE(any_case(g, [](const Case& c) { return c.seq_len > 4096 && c.batch * c.heads > 1; }));

  // The budget: 3 candidates in under 60 s on 2 cores at ~40 M elements/s per core.
  double elements = output_elements(g);
  std::cout << "default.toml: " << g.cases.size() << " cases, " << elements / 1e6
            << " M output elements per dtype\n";
  CHECK(elements >= 150e6);
  CHECK(elements <= 250e6);
  CHECK(g.cases.size() == 221);
  // The main job shows streams: token by token and chunked, with and without memory.
  CHECK(any_case(g, [](const Case& c) { return c.stream && c.stream->step_rows == 1 && c.mem_len > 0; }));
  CHECK(any_case(g, [](const Case& c) { return c.stream && c.stream->step_rows > 1 && c.mem_len == 0; }));
  // And packed batches, with memory and an offset in one of their sequences.
  CHECK(any_case(g, [](const Case& c) {
    return c.packed && std::any_of(c.packed->sequences.begin(), c.packed->sequences.end(),
                                   [](const PackedSequence& s) { return s.mem_len > 0 && s.first_position; });
  }));
}

TEST_CASE("varlen.toml holds packed batches of every kind, one crossing fp16's envelope") {
  Grid g = shipped("varlen.toml");
  check_ids_unique(g);
  CHECK(g.cases.size() == 20);
  CHECK(std::all_of(g.cases.begin(), g.cases.end(), [](const GridCase& gc) { return gc.params.packed != nullptr; }));
  auto has_sequence = [&](auto pred) {
    return any_case(g, [&](const Case& c) { return std::any_of(c.packed->sequences.begin(), c.packed->sequences.end(), pred); });
  };
  CHECK(has_sequence([](const PackedSequence& s) { return s.seq_len == 1; }));
  CHECK(has_sequence([](const PackedSequence& s) { return s.mem_len > 0; }));
  CHECK(has_sequence([](const PackedSequence& s) { return s.first_position && *s.first_position < 0; }));
  CHECK(any_case(g, [](const Case& c) { return c.first_position == 0 && c.mem_len > 0; }));
  CHECK(any_case(g, [](const Case& c) { return !c.xpos && c.layout == Layout::interleaved; }));
  // Keys at p scale by (7/2)^((p - c)/512): past |p - c| ~ 4,530 they leave fp16, in one
  // sequence of the batch only.
  CHECK(any_case(g, [](const Case& c) {
    int beyond = 0;
    for (long i = 0; i < c.packed->count(); ++i) {
      const Case one = c.sequence_case(i);
      beyond += std::max(one.highest_position() - one.centre(), one.centre() - one.lowest_position()) > 4530;
    }
    return c.xpos && beyond == 1 && c.packed->count() > 1;
  }));
}

TEST_CASE("decode.toml holds streams of every kind, fp16 crossing its envelope") {
  Grid g = shipped("decode.toml");
  check_ids_unique(g);
  CHECK(g.cases.size() == 30);
  CHECK(std::all_of(g.cases.begin(), g.cases.end(), [](const GridCase& gc) { return gc.params.stream.has_value(); }));
  CHECK(any_case(g, [](const Case& c) { return c.stream->step_rows == 1 && c.stream->prefill == 1; }));
  CHECK(any_case(g, [](const Case& c) { return c.stream->step_rows > 1 && c.stream->step_rows % 2 == 1; }));
  CHECK(any_case(g, [](const Case& c) { return !c.xpos; }));
  CHECK(any_case(g, [](const Case& c) { return c.layout == Layout::interleaved && c.mem_len > 0; }));
  // Keys at p scale by (7/2)^((p - c)/512): past p - c ~ 4,530 they leave fp16.
  CHECK(any_case(g, [](const Case& c) {
    return c.xpos && c.stream_call(0).last_position() - c.centre() < 4530 && c.last_position() - c.centre() > 4530;
  }));
}

TEST_CASE("long-context.toml: plain RoPE and XPOS to 2^20, NTK and interpolation, fp32 and bf16") {
  Grid g = shipped("long-context.toml");
  CHECK(g.name == "long-context");
  check_ids_unique(g);
  CHECK(g.dtypes == std::vector<DType>{DType::fp32, DType::bf16});
  CHECK(g.cases.size() == 40);
  // Queries and memory up to 2^20 each (judged in blocks of rows).
  CHECK(max_of(g, [](const Case& c) { return c.seq_len; }) == 1048576);
  CHECK(max_of(g, [](const Case& c) { return c.mem_len; }) == 1048576);
  CHECK(any_case(g, [](const Case& c) { return !c.xpos && c.seq_len == 1048576 && c.mem_len == 1048576; }));
  CHECK(any_case(g, [](const Case& c) { return c.xpos && c.scale_base == 65536.0 && c.mem_len == 1048576; }));
  CHECK(any_case(g, [](const Case& c) { return c.base_rescale == 8.0 && c.seq_len == 1048576; }));
  for (double alpha : {4.0, 8.0})
    CHECK(any_case(g, [&](const Case& c) { return c.interpolation == alpha && c.seq_len == 1048576; }));
  CHECK(std::all_of(g.cases.begin(), g.cases.end(), [](const GridCase& gc) {
    const Case& c = gc.params;
    return c.head_dim == 128 && c.rotary() == 128 && c.batch == 1 && c.heads == 1;
  }));
  CHECK(any_case(g, [](const Case& c) { return !c.xpos && c.base == 500000.0 && c.seq_len == 65536; }));
  CHECK(any_case(g, [](const Case& c) { return !c.xpos && c.base_rescale == 8.0 && c.interpolation == 1.0; }));
  for (double alpha : {4.0, 8.0})
    CHECK(any_case(g, [&](const Case& c) { return c.interpolation == alpha && c.base_rescale == 1.0; }));
  // XPOS: a scale base that keeps 2^20 positions in range, and the default 512 both
  // inside (N = 65536, |p - c| <= 32768) and beyond fp32's range (about 36,000).
  CHECK(any_case(g, [](const Case& c) { return c.xpos && c.scale_base == 65536.0 && c.seq_len == 65536; }));
  CHECK(any_case(g, [](const Case& c) { return c.xpos && c.scale_base == 512.0 && c.seq_len == 65536 && c.mem_len == 0; }));
  CHECK(any_case(g, [](const Case& c) {
    return c.xpos && c.scale_base == 512.0 && c.centre() - c.first_key_position() > 36000;
  }));
  CHECK(any_case(g, [](const Case& c) { return c.xpos && c.scale_base == 512.0 && c.seq_len == 262144; }));
  // Fine bins near position 0 for the horizon: a bin of N = 64 spans 1-2 positions.
  CHECK(any_case(g, [](const Case& c) { return !c.xpos && c.seq_len == 64; }));
  CHECK(any_case(g, [](const Case& c) { return c.xpos && c.seq_len == 64; }));
}

TEST_CASE("the x-transformers regression grid holds the reported configuration") {
  Grid g = shipped("regressions/x-transformers-xpos-mems.toml");
  check_ids_unique(g);
  CHECK(g.cases.size() == 6);
  REQUIRE_FALSE(g.cases.empty());
  // The report first: dim 512 / 4 heads, rotary on all of it, XPOS, M = 100, N = 1024.
  const Case& bug = g.cases.front().params;
  CHECK(bug.head_dim == 128);
  CHECK(bug.rotary() == 128);
  CHECK(bug.seq_len == 1024);
  CHECK(bug.mem_len == 100);
  CHECK(bug.xpos);
  CHECK(bug.layout == Layout::half);
  CHECK(g.cases.front().id == "D128-N1024-M100-s1");
  // Its neighbours.
  for (long m : {0L, 1L, 100L}) {
    CHECK(any_case(g, [&](const Case& c) { return c.seq_len == 1024 && c.mem_len == m; }));
    CHECK(any_case(g, [&](const Case& c) { return c.seq_len == 1 && c.mem_len == m; }));
  }
  CHECK_FALSE(any_case(g, [](const Case& c) { return c.head_dim != 128 || c.rotary() != 128 || !c.xpos; }));
}

TEST_CASE("fingerprints are stable and sensitive to what runs") {
  const std::string text = R"(name = "f"
dtypes = ["fp32", "bf16"]
[axes]
head_dim = 64
seq_len = [1, 7]
[tolerance]
base_ulps = 8
)";
  Grid a = parse_grid(text, "f.toml");
  CHECK(a.fingerprint.size() == 16);
  CHECK(a.fingerprint.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(parse_grid(text, "f.toml").fingerprint == a.fingerprint);

  // Name, description, source and comments do not change what runs.
  std::string renamed = text;
  renamed.replace(renamed.find("\"f\""), 3, "\"other\"");
  CHECK(parse_grid("# a comment\ndescription = \"d\"\n" + renamed, "elsewhere.toml").fingerprint ==
        a.fingerprint);

  auto changed = [&](const std::string& from, const std::string& to) {
    std::string t = text;
    t.replace(t.find(from), from.size(), to);
    return parse_grid(t, "f.toml").fingerprint;
  };
  CHECK(changed("seq_len = [1, 7]", "seq_len = [1, 8]") != a.fingerprint);
  CHECK(changed("seq_len = [1, 7]", "seq_len = [7, 1]") != a.fingerprint);  // order matters to shards
  CHECK(changed("[\"fp32\", \"bf16\"]", "[\"fp32\"]") != a.fingerprint);
  CHECK(changed("base_ulps = 8", "base_ulps = 9") != a.fingerprint);
  CHECK(changed("[axes]", "seeds = [2]\n[axes]") != a.fingerprint);

  // The shipped grids differ from each other and reload identically.
  CHECK(shipped("smoke.toml").fingerprint == shipped("smoke.toml").fingerprint);
  CHECK(shipped("smoke.toml").fingerprint != shipped("default.toml").fingerprint);
}
