#include "xposcheck/reference/large_blocks.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <map>
#include <mutex>
#include <new>
#include <set>
#include <unordered_map>
#include <utility>

namespace xposcheck {
namespace {

// Block sizes round up to this: small enough that little is wasted, large enough
// that the kept ranges stay few.
constexpr std::size_t kGrain = std::size_t(64) << 10;
constexpr std::size_t kPage = 4096;
// Kept bytes beyond this go back to the system: memory a finished long case needed
// should not stay with the process for the rest of a sweep.
constexpr std::size_t kMaxKeptBytes = std::size_t(1) << 30;

char* map_fresh(std::size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return static_cast<char*>(p);
}

// New pages in one call instead of one fault per page as they are first written: on a
// virtual machine each fault is a trip through the host, and a sweep's peak of blocks is
// hundreds of thousands of pages. Best effort: where the kernel cannot (before 5.14),
// the pages still come, fault by fault.
void populate(char* start, std::size_t bytes) noexcept {
#ifdef MADV_POPULATE_WRITE
  if (bytes > 0) madvise(start, bytes, MADV_POPULATE_WRITE);
#else
  (void)start;
  (void)bytes;
#endif
}

// A range made of two mappings cannot move in one call; page by page it can. A page
// that will not move is dropped and its place mapped afresh (zeros: contents of a
// new block are unspecified anyway).
void move_pages(char* from, std::size_t bytes, char* to) noexcept {
  constexpr int kFlags = MREMAP_MAYMOVE | MREMAP_FIXED;
  if (mremap(from, bytes, bytes, kFlags, to) != MAP_FAILED) return;
  for (std::size_t at = 0; at < bytes; at += kPage) {
    if (mremap(from + at, kPage, kPage, kFlags, to + at) != MAP_FAILED) continue;
    munmap(from + at, kPage);
    mmap(to + at, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  }
}

// Kept memory is a set of free address ranges, merged when they touch. A request takes
// the smallest range that fits (the rest stays kept); when none fits, the kept pages
// move into a new mapping (their page-table entries, not their bytes). Either way the
// process grows only by what was not kept, so blocks of every size serve one another,
// as the sizes of a grid's cases vary. Ranges change shape by re-keying their nodes,
// so nothing but adding a lone range allocates.
class Recycler {
 public:
  void* allocate(std::size_t bytes);
  void free(void* block) noexcept;
  LargeBlockStats stats() {
    std::lock_guard lock(mutex_);
    return stats_;
  }
  void release_kept() noexcept {
    std::lock_guard lock(mutex_);
    unmap_kept(stats_.kept_bytes);
  }

 private:
  using Ranges = std::map<char*, std::size_t>;  // start -> bytes

  // Range `it` becomes [start, start + bytes), or goes when bytes is 0.
  void reshape(Ranges::iterator it, char* start, std::size_t bytes) noexcept {
    auto by_size = by_size_.extract({it->second, it->first});
    auto range = ranges_.extract(it);
    if (bytes == 0) return;
    range.key() = start;
    range.mapped() = bytes;
    by_size.value() = {bytes, start};
    ranges_.insert(std::move(range));
    by_size_.insert(std::move(by_size));
  }

  // Takes `bytes` from the tail of range `it`.
  char* take_tail(Ranges::iterator it, std::size_t bytes) noexcept {
    char* tail = it->first + (it->second - bytes);
    reshape(it, it->first, it->second - bytes);
    stats_.kept_bytes -= bytes;
    return tail;
  }

  Ranges::iterator largest() { return ranges_.find(std::prev(by_size_.end())->second); }

  char* take_fitting(std::size_t bytes) noexcept;
  void keep(char* block, std::size_t bytes);
  std::size_t gather(char* block, std::size_t bytes) noexcept;
  void unmap_kept(std::size_t bytes) noexcept;

  std::mutex mutex_;
  Ranges ranges_;                                      // no two touch
  std::set<std::pair<std::size_t, char*>> by_size_;    // the same ranges, by size
  std::unordered_map<void*, std::size_t> live_;        // capacity of every block handed out
  LargeBlockStats stats_;
};

char* Recycler::take_fitting(std::size_t bytes) noexcept {
  const auto fit = by_size_.lower_bound({bytes, nullptr});
  if (fit == by_size_.end()) return nullptr;
  const auto it = ranges_.find(fit->second);
  char* block = it->first;
  reshape(it, block + bytes, it->second - bytes);
  stats_.kept_bytes -= bytes;
  return block;
}

void Recycler::keep(char* block, std::size_t bytes) {
  auto next = ranges_.lower_bound(block);
  const bool joins_next = next != ranges_.end() && block + bytes == next->first;
  if (next != ranges_.begin()) {
    const auto prev = std::prev(next);
    if (prev->first + prev->second == block) {
      std::size_t joined = prev->second + bytes;
      if (joins_next) {
        joined += next->second;
        reshape(next, next->first, 0);
      }
      reshape(prev, prev->first, joined);
      stats_.kept_bytes += bytes;
      return;
    }
  }
  if (joins_next) {
    reshape(next, block, bytes + next->second);
  } else {
    const auto range = ranges_.emplace(block, bytes).first;
    try {
      by_size_.emplace(bytes, block);
    } catch (...) {
      ranges_.erase(range);
      throw;
    }
  }
  stats_.kept_bytes += bytes;
}

// Moves kept pages into the start of `block`, the largest ranges first, until it is
// full or nothing is kept; returns the bytes moved.
std::size_t Recycler::gather(char* block, std::size_t bytes) noexcept {
  std::size_t filled = 0;
  while (filled < bytes && !ranges_.empty()) {
    const auto it = largest();
    const std::size_t n = std::min(bytes - filled, it->second);
    move_pages(take_tail(it, n), n, block + filled);
    filled += n;
  }
  return filled;
}

// Unmaps kept memory, the largest ranges first, until `bytes` are given back.
void Recycler::unmap_kept(std::size_t bytes) noexcept {
  while (bytes > 0 && !ranges_.empty()) {
    const auto it = largest();
    const std::size_t n = std::min(bytes, it->second);
    munmap(take_tail(it, n), n);
    bytes -= n;
  }
}

void* Recycler::allocate(std::size_t bytes) {
  if (bytes > std::size_t(-1) / 2) throw std::bad_alloc();
  const std::size_t capacity = (bytes + kGrain - 1) / kGrain * kGrain;
  std::lock_guard lock(mutex_);
  char* block = kLargeBlocksKept ? take_fitting(capacity) : nullptr;
  if (block) {
    ++stats_.reused;
  } else if (kLargeBlocksKept) {
    block = map_fresh(capacity);
    const std::size_t moved = gather(block, capacity);
    populate(block + moved, capacity - moved);
    ++stats_.fresh;
    stats_.moved_bytes += moved;
    stats_.new_bytes += capacity - moved;
  } else {
    block = static_cast<char*>(std::aligned_alloc(kPage, capacity));
    if (!block) throw std::bad_alloc();
    ++stats_.fresh;
    stats_.new_bytes += capacity;
  }
  try {
    live_.emplace(block, capacity);
  } catch (...) {
    kLargeBlocksKept ? void(munmap(block, capacity)) : std::free(block);
    throw;
  }
  stats_.live_bytes += capacity;
  return block;
}

void Recycler::free(void* block) noexcept {
  if (!block) return;
  std::lock_guard lock(mutex_);
  const auto it = live_.find(block);
  if (it == live_.end()) std::abort();  // not ours: unmapping it would corrupt the heap
  const std::size_t capacity = it->second;
  live_.erase(it);
  stats_.live_bytes -= capacity;
  if (!kLargeBlocksKept) return std::free(block);
  try {
    keep(static_cast<char*>(block), capacity);
  } catch (...) {
    munmap(block, capacity);
  }
  if (stats_.kept_bytes > kMaxKeptBytes) unmap_kept(stats_.kept_bytes - kMaxKeptBytes);
}

// Never destroyed: blocks may come back from static destructors.
Recycler& recycler() {
  static Recycler* r = new Recycler;
  return *r;
}

}  // namespace

void* allocate_large_block(std::size_t bytes) { return recycler().allocate(bytes); }
void free_large_block(void* block) noexcept { recycler().free(block); }
LargeBlockStats large_block_stats() { return recycler().stats(); }
void release_kept_blocks() noexcept { recycler().release_kept(); }

}  // namespace xposcheck
