#include "golden_files.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

namespace xposcheck::cli {
namespace {

namespace fs = std::filesystem;

long dim(const Shape& s, std::size_t from_end) { return long(s[s.size() - from_end]); }

long leading_product(const Shape& s) {
  long p = 1;
  for (std::size_t i = 0; i + 2 < s.size(); ++i) p *= long(s[i]);
  return p;
}

double max_abs(const double* v, std::size_t n, double m) {
  for (std::size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(v[i]));
  return m;
}

}  // namespace

GoldenFiles::GoldenFiles(const fs::path& dir, const Shape& q, const Shape& k, const Shape& logits)
    : heads_(leading_product(q)), d_(dim(q, 1)), n_(dim(q, 2)), keys_(dim(k, 2)),
      logit_rows_(dim(logits, 2)), q_in_(dir / "q_in.npy", q), k_in_(dir / "k_in.npy", k),
      q_out_(dir / "q_out.npy", q), k_out_(dir / "k_out.npy", k),
      logits_(dir / "logits.npy", logits) {}

void GoldenFiles::write(const GoldenBlock& b) {
  const long rows = b.query ? n_ : keys_;
  const auto width = std::size_t(b.count * d_);
  NpyWriter& in = b.query ? q_in_ : k_in_;
  NpyWriter& out = b.query ? q_out_ : k_out_;
  double& m = b.query ? max_q_ : max_k_;
  for (long h = 0; h < heads_; ++h) {
    const auto at = std::size_t((h * rows + b.first) * d_);
    in.write(at, &b.in[std::size_t(h) * width], width);
    out.write(at, &b.out[std::size_t(h) * width], width);
    m = max_abs(&b.out[std::size_t(h) * width], width, m);
  }
  if (b.logits.empty()) return;
  for (long r = 0; r < heads_ * logit_rows_; ++r)
    logits_.write(std::size_t(r * keys_ + b.first), &b.logits[std::size_t(r * b.count)],
                  std::size_t(b.count));
}

void GoldenFiles::commit() {
  for (NpyWriter* f : {&q_in_, &k_in_, &q_out_, &k_out_, &logits_}) f->commit();
}

BlockPipe::BlockPipe(std::function<void(const GoldenBlock&)> write, std::size_t depth)
    : write_(std::move(write)), depth_(std::max<std::size_t>(depth, 1)), spare_(depth_ + 1),
      thread_([this] { run(); }) {}

BlockPipe::~BlockPipe() { stop(); }

void BlockPipe::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(lock, [&] { return !full_.empty() || closed_; });
    if (full_.empty()) return;
    GoldenBlock b = std::move(full_.front());
    full_.pop_front();
    lock.unlock();
    std::exception_ptr error;
    try {
      if (!error_) write_(b);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    if (error && !error_) error_ = error;
    free_.push_back(std::move(b));
    changed_.notify_all();
  }
}

// Waits for a written block's storage rather than allocating more: fresh storage is
// zero-filled and faulted in, which cost as much as writing the block.
void BlockPipe::put(GoldenBlock& b) {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return (full_.size() < depth_ && (!free_.empty() || spare_ > 0)) || error_; });
  if (error_) std::rethrow_exception(error_);
  GoldenBlock slot;
  if (!free_.empty()) {
    slot = std::move(free_.back());
    free_.pop_back();
  } else {
    --spare_;
  }
  std::swap(slot, b);
  full_.push_back(std::move(slot));
  changed_.notify_all();
}

void BlockPipe::stop() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void BlockPipe::finish() {
  stop();
  if (error_) std::rethrow_exception(error_);
}

}  // namespace xposcheck::cli
