#pragma once
// golden_fast block by block: a long case's outputs made a few rows at a time, so that
// inputs, outputs and logits can stream to files without any whole tensor in memory.
// Every value is bit for bit the one golden_fast gives.
#include <cstddef>
#include <functional>
#include <vector>

#include "xposcheck/reference/case.hpp"
#include "xposcheck/reference/golden.hpp"

namespace xposcheck {

// Rows first..first+count-1 of every (batch, head) of q (query) or k.
struct GoldenBlock {
  bool query = true;
  long first = 0, count = 0;
  Values in, out;  // [batch * heads][count][D]
  // Key blocks with logits asked for: logits[h][i][n] of logit row i and key first + n,
  // [batch * heads][logit rows][count].
  Values logits;
};

// About this many elements of one tensor per block (4 MiB of doubles): large enough
// that per-block work is negligible, small enough that a few blocks in flight stay
// far below the tensors of a long case.
inline constexpr std::size_t kGoldenBlockElements = std::size_t(1) << 19;

// Rows per block for case c: kGoldenBlockElements / (batch * heads * D), at least 1.
long golden_block_rows(const Case& c);

// Fills block.in (already sized) with the inputs of the block's rows.
using BlockInputs = std::function<void(GoldenBlock& block)>;
// Receives every finished block, in order. It may take the block's storage by swapping
// vectors with it (a writer thread's recycled ones, say): the block is resized before
// each use.
using BlockSink = std::function<void(GoldenBlock& block)>;

// Every block of block_rows query rows, first to last, then every block of key rows,
// each with its outputs and, for keys, the logits of options' sampled query rows
// against the block's keys. Memory: a block, the tables' seeds and the sampled query
// rows (batch * heads * rows * D, twice for the double-double route). Returns the
// sampled rows (logit_rows). Throws as golden_fast, and std::invalid_argument for
// block_rows < 1.
std::vector<long> golden_fast_blocks(const Case& c, const BlockInputs& inputs,
                                     const GoldenOptions& options, long block_rows,
                                     const BlockSink& sink);

// golden_fast's outputs of the given rows of q (query) or k alone, from their inputs
// `in` ([batch * heads][rows.size()][D]), in the same layout: bit for bit those rows
// of the whole case's outputs. For the few rows a diagnosis of a long case reads.
// Throws as golden_fast, and std::invalid_argument for a row out of range or an input
// of another size. correctly_rounded as GoldenOptions'.
Values golden_fast_rows(const Case& c, bool query, const std::vector<long>& rows, const Values& in,
                        bool correctly_rounded = true);

}  // namespace xposcheck
