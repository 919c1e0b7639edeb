// golden_fast_blocks: golden_fast's outputs and logits a block of rows at a time.
//
// Bit for bit the same as golden_fast because every value is made by the same code
// from the same numbers: table rows combine from the same seeds (TableSeeds), rows
// rotate through the same kernels (rotate_block, rotate_dd_row), and each logit is one
// query row against one key, by the same route (dd_logits_route) and function, which
// depends on no other key (test_golden_blocks checks all of it).
#include "xposcheck/reference/golden_blocks.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "fast.hpp"
#include "parallel.hpp"
#include "xposcheck/reference/tables.hpp"

namespace xposcheck {
namespace {

// The outputs of the sampled query rows, gathered as the query blocks pass, against
// which every key block's logits are taken: rounded (the plain route) or double-double.
class QuerySample {
 public:
  QuerySample(const Case& c, std::vector<long> rows, const GoldenOptions& options)
      : c_(c), rows_(std::move(rows)), dd_(dd_logits_route(c, rows_.size(), options)) {
    const std::size_t n = std::size_t(c.batch * c.heads) * rows_.size() * std::size_t(c.head_dim);
    hi_.assign(n, 0.0);
    if (dd_) lo_.assign(n, 0.0);
  }

  void take(const RotaryTables& t, const GoldenBlock& b) {
    const long d = c_.head_dim, bh = c_.batch * c_.heads, nr = long(rows_.size());
    auto it = std::lower_bound(rows_.begin(), rows_.end(), b.first);
    for (; it != rows_.end() && *it < b.first + b.count; ++it) {
      const long i = it - rows_.begin(), r = *it - b.first;
      for (long h = 0; h < bh; ++h) {
        const std::size_t to = std::size_t((h * nr + i) * d), from = std::size_t((h * b.count + r) * d);
        if (dd_)
          rotate_dd_row(c_, t, true, c_.query_position(*it), &b.in[from], &hi_[to], &lo_[to]);
        else
          std::copy_n(&b.out[from], d, &hi_[to]);
      }
    }
  }

  void logits(const RotaryTables& t, GoldenBlock& b) {
    const long d = c_.head_dim, bh = c_.batch * c_.heads, nr = long(rows_.size()), n = b.count;
    b.logits.resize(std::size_t(bh * nr * n));
    if (dd_) rotate_keys_dd(t, b);
    for (long h = 0; h < bh; ++h) {
      double* out = &b.logits[std::size_t(h * nr * n)];
      const std::size_t q = std::size_t(h * nr * d), k = std::size_t(h * n * d);
      if (dd_)
        dd_logits_head(&hi_[q], &lo_[q], nr, &kh_[k], &kl_[k], n, d, out, n);
      else
        plain_logits_head(&hi_[q], nr, &b.out[k], n, d, out, n);
    }
  }

 private:
  void rotate_keys_dd(const RotaryTables& t, const GoldenBlock& b) {
    const long d = c_.head_dim, n = b.count, rows = c_.batch * c_.heads * n;
    kh_.resize(std::size_t(rows * d));
    kl_.resize(std::size_t(rows * d));
    parallel_for(rows, 64, [&](long begin, long end) {
      for (long r = begin; r < end; ++r) {
        const std::size_t at = std::size_t(r * d);
        rotate_dd_row(c_, t, false, c_.key_position(b.first + r % n), &b.in[at], &kh_[at],
                      &kl_[at]);
      }
    });
  }

  const Case& c_;
  std::vector<long> rows_;
  bool dd_;
  std::vector<double> hi_, lo_;  // [batch * heads][rows][D]
  std::vector<double> kh_, kl_;  // a key block, double-double
};

}  // namespace

long golden_block_rows(const Case& c) {
  const double per_row = double(c.batch) * double(c.heads) * double(c.head_dim);
  return std::max(1L, static_cast<long>(double(kGoldenBlockElements) / per_row));
}

std::vector<long> golden_fast_blocks(const Case& c, const BlockInputs& inputs,
                                     const GoldenOptions& options, long block_rows,
                                     const BlockSink& sink) {
  validate(c);
  if (block_rows < 1)
    throw std::invalid_argument("golden_fast_blocks: block_rows = " + std::to_string(block_rows) +
                                "; must be at least 1");
  const TableSeeds seeds(c, c.first_key_position(), c.last_position());
  std::vector<long> rows;
  if (options.logits) rows = logit_rows(c.seq_len, options.max_logit_rows);
  QuerySample sample(c, rows, options);
  const long width = c.batch * c.heads * c.head_dim;
  GoldenBlock b;
  for (const bool query : {true, false}) {
    const long total = query ? c.seq_len : c.key_rows();
    for (long first = 0; first < total; first += block_rows) {
      b.query = query;
      b.first = first;
      b.count = std::min(block_rows, total - first);
      b.in.resize(std::size_t(b.count * width));
      b.out.resize(std::size_t(b.count * width));
      if (query || !options.logits) b.logits.clear();  // a key block's keep their size
      inputs(b);
      const long p = query ? c.query_position(first) : c.key_position(first);
      const RotaryTables t(seeds, p, p + b.count - 1);
      rotate_block(c, t, query, first, b.count, b.in.data(), b.out.data(), Direction::forward,
                   options.correctly_rounded);
      if (query) sample.take(t, b);
      if (!query && options.logits) sample.logits(t, b);
      sink(b);
    }
  }
  return rows;
}

Values golden_fast_rows(const Case& c, bool query, const std::vector<long>& rows, const Values& in,
                        bool correctly_rounded) {
  validate(c);
  const long total = query ? c.seq_len : c.key_rows(), bh = c.batch * c.heads, d = c.head_dim;
  const long n = static_cast<long>(rows.size());
  if (in.size() != std::size_t(bh * n * d))
    throw std::invalid_argument("golden_fast_rows: " + std::to_string(in.size()) + " inputs for " +
                                std::to_string(n) + " rows of " + std::to_string(bh * d) + " values");
  for (long r : rows) {
    if (r < 0 || r >= total)
      throw std::invalid_argument("golden_fast_rows: row " + std::to_string(r) + " outside 0.." +
                                  std::to_string(total - 1));
  }
  Values out(in.size()), row_in(std::size_t(bh * d)), row_out(std::size_t(bh * d));
  if (rows.empty()) return out;
  const TableSeeds seeds(c, c.first_key_position(), c.last_position());
  for (long i = 0; i < n; ++i) {
    const long r = rows[std::size_t(i)], p = query ? c.query_position(r) : c.key_position(r);
    for (long h = 0; h < bh; ++h) std::copy_n(&in[std::size_t((h * n + i) * d)], d, &row_in[std::size_t(h * d)]);
    rotate_block(c, RotaryTables(seeds, p, p), query, r, 1, row_in.data(), row_out.data(), Direction::forward,
                 correctly_rounded);
    for (long h = 0; h < bh; ++h) std::copy_n(&row_out[std::size_t(h * d)], d, &out[std::size_t((h * n + i) * d)]);
  }
  return out;
}

}  // namespace xposcheck
