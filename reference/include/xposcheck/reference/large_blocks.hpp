#pragma once
// Large blocks of memory (tables, tensors) kept for reuse when they are freed.
//
// A sweep frees and allocates gigabytes of tables and tensors, case after case. Fresh
// pages are zeroed by the kernel on first touch, and on a virtual machine that hands
// freed pages back to its host each fault also goes through the host: measured on the
// default grid, a table's pages cost more to fault in than to compute, and the faults
// of the harness slowed a candidate running alongside. Kept blocks skip all of that,
// and what a new block adds is populated in one call instead of a fault per page.
//
// Keeping never raises the peak: a request is served from kept memory first (a kept
// range that fits, or else kept pages moved into a new mapping), so the process grows
// only by what nothing kept could give. Built with AddressSanitizer, nothing is kept
// (blocks come from malloc, where it sees overruns and uses after free).
#include <cstddef>

namespace xposcheck {

// Whether freed blocks are kept: not under AddressSanitizer, which sees overruns and
// uses after free only in memory from malloc.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kLargeBlocksKept = false;
#else
inline constexpr bool kLargeBlocksKept = true;
#endif

// Blocks at least this large go through the recycler; smaller ones stay with malloc.
inline constexpr std::size_t kLargeBlockBytes = std::size_t(256) << 10;

// A page-aligned block of at least `bytes` (>= kLargeBlockBytes), contents
// unspecified. Throws std::bad_alloc.
void* allocate_large_block(std::size_t bytes);
// Takes back a block from allocate_large_block; it is kept for reuse or freed.
void free_large_block(void* block) noexcept;

struct LargeBlockStats {
  std::size_t reused = 0;       // requests served by one kept range
  std::size_t fresh = 0;        // requests given a new block
  std::size_t moved_bytes = 0;  // kept pages moved into new mappings
  std::size_t new_bytes = 0;    // bytes of new mappings beyond the kept pages moved in
  std::size_t kept_bytes = 0;   // held now for reuse
  std::size_t live_bytes = 0;   // handed out now (block capacities)
};
LargeBlockStats large_block_stats();

// Gives every kept block back to the system (tests; a long-lived caller going idle).
void release_kept_blocks() noexcept;

}  // namespace xposcheck
