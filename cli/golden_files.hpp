#pragma once
// The .npy files of `xposcheck golden`, written block by block on a thread of their own
// while the next blocks are computed: generation, golden computation and writing
// overlap, and memory holds a few blocks, never a whole tensor.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "xposcheck/reference/golden_blocks.hpp"
#include "xposcheck/reference/npy.hpp"

namespace xposcheck::cli {

// q_in, k_in, q_out, k_out and logits .npy of one run, in DIR. Shapes are the files'
// own: the inputs' leading dimensions, then [rows, D] (logits: [logit rows, M+N]).
class GoldenFiles {
 public:
  GoldenFiles(const std::filesystem::path& dir, const Shape& q, const Shape& k,
              const Shape& logits);
  // Writes the block's rows (and logits) where they belong in each file.
  void write(const GoldenBlock& b);
  // Every file appears, in the order q_in, k_in, q_out, k_out, logits.
  void commit();
  double max_abs_q_out() const { return max_q_; }
  double max_abs_k_out() const { return max_k_; }

 private:
  long heads_, d_, n_, keys_, logit_rows_;
  NpyWriter q_in_, k_in_, q_out_, k_out_, logits_;
  double max_q_ = 0.0, max_k_ = 0.0;
};

// Blocks from the computing thread to a writing thread. At most `depth` blocks wait and
// one is written, which bounds memory; the written blocks' storage goes back to the
// computing side.
class BlockPipe {
 public:
  BlockPipe(std::function<void(const GoldenBlock&)> write, std::size_t depth);
  ~BlockPipe();
  BlockPipe(const BlockPipe&) = delete;
  BlockPipe& operator=(const BlockPipe&) = delete;

  // Queues b's contents, leaving b with the storage of a written block (or none).
  // Rethrows the writer's error, if it has failed, instead of queueing.
  void put(GoldenBlock& b);
  // Waits until every queued block is written; rethrows the writer's error.
  void finish();

 private:
  void run();
  void stop();

  std::function<void(const GoldenBlock&)> write_;
  std::size_t depth_;
  std::size_t spare_;  // blocks the pipe may still take without handing one back
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<GoldenBlock> full_;
  std::vector<GoldenBlock> free_;
  bool closed_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

// Blocks a golden run holds at once: `depth` queued, one being written, one being made.
inline constexpr std::size_t kGoldenPipeDepth = 3;
inline constexpr std::size_t kGoldenBlocksHeld = kGoldenPipeDepth + 2;

}  // namespace xposcheck::cli
