// The recycler of large blocks: blocks never overlap, freed memory serves later
// requests of any size (one kept range, or kept pages moved into a new block), the
// process never holds more than the most that was live, and kept memory is bounded.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "xposcheck/reference/large_blocks.hpp"
#include "xposcheck/reference/tensor.hpp"

using namespace xposcheck;

namespace {

constexpr std::size_t MiB = std::size_t(1) << 20;

struct Block {
  unsigned char* p;
  std::size_t bytes;
  unsigned char tag;
};

// Every byte of every block still holds its own tag: no two blocks overlap.
bool tags_intact(const std::vector<Block>& blocks) {
  for (const Block& b : blocks)
    if (std::any_of(b.p, b.p + b.bytes, [&](unsigned char x) { return x != b.tag; })) return false;
  return true;
}

}  // namespace

TEST_CASE("large blocks never overlap, through reuse, splitting and gathering", "[large_blocks]") {
  release_kept_blocks();
  std::mt19937_64 rng(7);
  std::vector<Block> live;
  unsigned char tag = 1;
  std::size_t peak_live = large_block_stats().live_bytes;
  for (int step = 0; step < 300; ++step) {
    if (!live.empty() && rng() % 5 < 2) {
      const std::size_t i = rng() % live.size();
      free_large_block(live[i].p);
      live.erase(live.begin() + static_cast<long>(i));
    } else {
      const std::size_t bytes = kLargeBlockBytes + rng() % (12 * MiB);
      auto* p = static_cast<unsigned char*>(allocate_large_block(bytes));
      REQUIRE(reinterpret_cast<std::uintptr_t>(p) % 4096 == 0);
      std::memset(p, tag, bytes);
      live.push_back({p, bytes, tag});
      tag = static_cast<unsigned char>(tag % 250 + 1);
    }
    const LargeBlockStats s = large_block_stats();
    peak_live = std::max(peak_live, s.live_bytes);
    // Keeping never holds the process above the most that was ever live.
    REQUIRE(s.live_bytes + s.kept_bytes <= peak_live);
  }
  CHECK(tags_intact(live));
  const LargeBlockStats s = large_block_stats();
  if (kLargeBlocksKept) {
    CHECK(s.reused > 50);
    CHECK(s.moved_bytes > 0);
  }
  for (const Block& b : live) free_large_block(b.p);
  release_kept_blocks();
  CHECK(large_block_stats().kept_bytes == 0);
}

TEST_CASE("a freed block serves a smaller request without new memory", "[large_blocks]") {
  if (!kLargeBlocksKept) return;
  release_kept_blocks();
  void* big = allocate_large_block(8 * MiB);
  std::memset(big, 3, 8 * MiB);
  free_large_block(big);
  const LargeBlockStats before = large_block_stats();
  CHECK(before.kept_bytes >= 8 * MiB);
  void* small = allocate_large_block(3 * MiB);
  const LargeBlockStats after = large_block_stats();
  CHECK(after.reused == before.reused + 1);
  CHECK(after.new_bytes == before.new_bytes);
  CHECK(static_cast<char*>(small) >= static_cast<char*>(big));
  CHECK(static_cast<char*>(small) + 3 * MiB <= static_cast<char*>(big) + 8 * MiB);
  free_large_block(small);
  release_kept_blocks();
}

TEST_CASE("kept pages too scattered for one request move into its new block", "[large_blocks]") {
  if (!kLargeBlocksKept) return;
  release_kept_blocks();
  // a and c are kept while b stays live between them, so no kept range holds 12 MiB.
  auto* a = static_cast<unsigned char*>(allocate_large_block(8 * MiB));
  auto* b = static_cast<unsigned char*>(allocate_large_block(8 * MiB));
  auto* c = static_cast<unsigned char*>(allocate_large_block(8 * MiB));
  std::memset(a, 0xA1, 8 * MiB);
  std::memset(b, 0xB2, 8 * MiB);
  std::memset(c, 0xC3, 8 * MiB);
  free_large_block(a);
  free_large_block(c);
  const LargeBlockStats before = large_block_stats();
  auto* d = static_cast<unsigned char*>(allocate_large_block(12 * MiB));
  const LargeBlockStats after = large_block_stats();
  CHECK(after.fresh == before.fresh + 1);
  CHECK(after.moved_bytes - before.moved_bytes == 12 * MiB);
  CHECK(after.new_bytes == before.new_bytes);
  CHECK(after.kept_bytes == before.kept_bytes - 12 * MiB);
  // The pages moved with their contents: written once, never faulted in afresh.
  const auto kept_byte = [](unsigned char x) { return x == 0xA1 || x == 0xC3; };
  CHECK(std::all_of(d, d + 12 * MiB, kept_byte));
  CHECK(std::all_of(b, b + 8 * MiB, [](unsigned char x) { return x == 0xB2; }));
  std::memset(d, 0xD4, 12 * MiB);
  CHECK(std::all_of(b, b + 8 * MiB, [](unsigned char x) { return x == 0xB2; }));
  free_large_block(b);
  free_large_block(d);
  release_kept_blocks();
}

TEST_CASE("kept memory is bounded", "[large_blocks]") {
  release_kept_blocks();
  std::vector<void*> blocks;
  for (int i = 0; i < 5; ++i) blocks.push_back(allocate_large_block(256 * MiB));
  for (void* p : blocks) free_large_block(p);
  CHECK(large_block_stats().kept_bytes <= (std::size_t(1) << 30));
  CHECK(large_block_stats().live_bytes == 0);
  release_kept_blocks();
  CHECK(large_block_stats().kept_bytes == 0);
}

TEST_CASE("a new block's pages are in memory before it is first written", "[large_blocks]") {
  if (!kLargeBlocksKept) return;
  release_kept_blocks();
  const std::size_t bytes = 8 * MiB, page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  void* block = allocate_large_block(bytes);
  std::vector<unsigned char> resident(bytes / page);
  REQUIRE(mincore(block, bytes, resident.data()) == 0);
  CHECK(std::count_if(resident.begin(), resident.end(), [](unsigned char r) { return r & 1; }) ==
        static_cast<long>(resident.size()));
  free_large_block(block);
  release_kept_blocks();
}

TEST_CASE("large tensors come from the recycler, small ones from malloc", "[large_blocks]") {
  if (!kLargeBlocksKept) return;
  release_kept_blocks();
  const LargeBlockStats before = large_block_stats();
  { Values small(kLargeBlockBytes / sizeof(double) - 1); }
  CHECK(large_block_stats().fresh + large_block_stats().reused == before.fresh + before.reused);
  { Values large(kLargeBlockBytes / sizeof(double)); }
  { Values again(kLargeBlockBytes / sizeof(double)); }
  const LargeBlockStats after = large_block_stats();
  CHECK(after.fresh == before.fresh + 1);
  CHECK(after.reused == before.reused + 1);
  CHECK(after.live_bytes == before.live_bytes);
  release_kept_blocks();
}
