// RotaryTables: cos phi, sin phi, sigma and 1/sigma for every (position, pair) of a
// case to double-double accuracy, and the cache that shares them.
//
// Evaluating ~1M multiprecision cos/sin/exp for a long case would take minutes, so the
// tables use a decomposition of the position, p = first + h*S + l with 0 <= l < S:
//   cos(C + F) = cos C cos F - sin C sin F,  sin(C + F) = sin C cos F + cos C sin F,
//   sigma(p) = zeta^((first + h*S - c)/B) * zeta^(l/B),
// where the "coarse" values (angle C = (first + h*S) omega) and the "fine" values
// (angle F = l omega) come from 128-bit arithmetic (seeds.hpp), the fine ones through
// one more such split, and are combined in double-double. Each value carries a few
// 2^-104 of error (absolute for cos and sin, relative for the scales); test_tables
// checks this against direct multiprecision evaluation.
#include "xposcheck/reference/tables.hpp"

#include <bit>
#include <cmath>
#include <future>
#include <list>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "dd.hpp"
#include "parallel.hpp"
#include "seeds.hpp"

namespace xposcheck {
namespace {

// A scale whose hi overflowed gets lo NaN from the products; its lo is made 0. (A quiet
// != test: GCC will not if-convert signalling comparisons under -ftrapping-math.)
inline DD finite_lo(DD x) { return {x.hi, x.lo != x.lo ? 0.0 : x.lo}; }

// Rows of 8 arrays of P doubles, {cos, sin, scale, inv_scale} x {hi, lo}, the layout
// of the tables themselves; the seeds are transposed into it so that combine_row runs
// over contiguous arrays.
inline void store(double* row, int q, long P, long j, DD v) {
  row[2 * q * P + j] = v.hi;
  row[(2 * q + 1) * P + j] = v.lo;
}

// The 8 arrays of one row, for the vectoriser.
struct Arrays {
  const double* a[8];
  Arrays(const double* row, long P) {
    for (int i = 0; i < 8; ++i) a[i] = row + i * P;
  }
  DD get(int q, long j) const { return {a[2 * q][j], a[2 * q + 1][j]}; }
};

// Table row = coarse rotation C combined with fine rotation F, for every pair.
__attribute__((target_clones("fma", "default"))) void combine_row(const double* coarse,
                                                                  const double* fine,
                                                                  double* out, long P) {
  const Arrays C(coarse, P), F(fine, P);
  double* o[8];
  for (int i = 0; i < 8; ++i) o[i] = out + i * P;
  // The output never aliases the seeds; without this GCC gives up on the 16 x 8
  // runtime alias checks and leaves the loop scalar.
#pragma GCC ivdep
  for (long j = 0; j < P; ++j) {
    const DD cos = dd::sub(dd::mul(C.get(0, j), F.get(0, j)), dd::mul(C.get(1, j), F.get(1, j)));
    const DD sin = dd::add(dd::mul(C.get(1, j), F.get(0, j)), dd::mul(C.get(0, j), F.get(1, j)));
    const DD scale = finite_lo(dd::mul(C.get(2, j), F.get(2, j)));
    const DD inv = finite_lo(dd::mul(C.get(3, j), F.get(3, j)));
    o[0][j] = cos.hi, o[1][j] = cos.lo, o[2][j] = sin.hi, o[3][j] = sin.lo;
    o[4][j] = scale.hi, o[5][j] = scale.lo, o[6][j] = inv.hi, o[7][j] = inv.lo;
  }
}

// walks[j][k] for every pair j, as rows in the table layout.
std::vector<double> transpose(const std::vector<PairSeeds>& seeds,
                              std::vector<SeedRotation> PairSeeds::*walk) {
  const long P = static_cast<long>(seeds.size()), count = static_cast<long>((seeds[0].*walk).size());
  std::vector<double> rows(static_cast<std::size_t>(count) * 8 * P);
  for (long k = 0; k < count; ++k)
    for (long j = 0; j < P; ++j) {
      const SeedRotation& r = (seeds[j].*walk)[k];
      double* row = &rows[static_cast<std::size_t>(k) * 8 * P];
      store(row, 0, P, j, r.cos);
      store(row, 1, P, j, r.sin);
      store(row, 2, P, j, r.scale);
      store(row, 3, P, j, r.inv_scale);
    }
  return rows;
}

}  // namespace

namespace {

void check_range(long first, long last) {
  if (first > last)
    throw std::invalid_argument("RotaryTables: empty position range " + std::to_string(first) +
                                ".." + std::to_string(last));
}

}  // namespace

// Three multiprecision walks of about n^(1/3) steps each (position = first + h*S +
// m*S1 + l with S = S1 * S1) keep the 128-bit work small; every table entry then costs
// two double-double rotations, fine = mid (m) x unit (l), entry = coarse (h) x fine.
TableSeeds::TableSeeds(const Case& c, long first, long last)
    : first_(first), last_(last), pairs_(0), centre_(0) {
  validate(c);
  check_range(first, last);
  pairs_ = c.pairs();
  centre_ = c.centre();
  const long n = last - first + 1;
  const auto cbrt = static_cast<unsigned long>(std::ceil(std::cbrt(double(n))));
  s1_ = static_cast<long>(std::bit_ceil(cbrt));
  step_ = s1_ * s1_;
  const SeedLayout layout{first, s1_, (n + step_ - 1) / step_};
  std::vector<PairSeeds> seeds(static_cast<std::size_t>(pairs_));
  parallel_for(pairs_, 1, [&](long begin, long end) {
    for (long j = begin; j < end; ++j) seeds[j] = pair_seeds(c, j, layout);
  });
  coarse_ = transpose(seeds, &PairSeeds::coarse);
  mid_ = transpose(seeds, &PairSeeds::mid);
  unit_ = transpose(seeds, &PairSeeds::unit);
  for (const PairSeeds& p : seeds) {
    omega_.push_back(p.frequency.omega);
    log_zeta_.push_back(p.frequency.log_zeta);
  }
}

// The fine rows are shared by every coarse step: a range of at least one step makes
// each once; a shorter range (a block of a long case) makes only its own.
void TableSeeds::combine(long from, long to, double* out) const {
  if (from < first_ || to > last_ || from > to)
    throw std::invalid_argument("TableSeeds: rows " + std::to_string(from) + ".." +
                                std::to_string(to) + " outside " + std::to_string(first_) +
                                ".." + std::to_string(last_));
  const long n = to - from + 1, P = pairs_, i0 = from - first_;
  const std::size_t row = 8 * static_cast<std::size_t>(P);
  const bool all_fine = n >= step_;
  const long fine_rows = all_fine ? step_ : n;
  // Every element is written below: zero-filling a block's worth first would cost as
  // much as combining it.
  Values fine(static_cast<std::size_t>(fine_rows) * row);
  for (long r = 0; r < fine_rows; ++r) {
    const long k = all_fine ? r : (i0 + r) % step_;
    combine_row(&mid_[(k / s1_) * row], &unit_[(k % s1_) * row], &fine[r * row], P);
  }
  parallel_for(n, 256, [&](long begin, long end) {
    for (long r = begin; r < end; ++r) {
      const long i = i0 + r, f = all_fine ? i % step_ : r;
      combine_row(&coarse_[(i / step_) * row], &fine[f * row], &out[r * row], P);
    }
  });
}

RotaryTables::RotaryTables(const Case& c, long first, long last)
    : RotaryTables(TableSeeds(c, first, last), first, last) {}

RotaryTables::RotaryTables(const TableSeeds& seeds, long from, long to)
    : first_(from), last_(to), pairs_(seeds.pairs_), omega_(seeds.omega_),
      log_zeta_(seeds.log_zeta_), centre_(seeds.centre_) {
  check_range(from, to);
  build(seeds);
}

void RotaryTables::build(const TableSeeds& seeds) {
  const long n = last_ - first_ + 1;
  try {
    data_.resize(static_cast<std::size_t>(n) * 8 * static_cast<std::size_t>(pairs_));
    seeds.combine(first_, last_, data_.data());
  } catch (const std::bad_alloc&) {
    throw_allocation_error("the rotary tables of " + std::to_string(n) + " positions x " +
                               std::to_string(pairs_) + " pairs",
                           static_cast<double>(n) * static_cast<double>(pairs_) * 8 * 8);
  }
}

double RotaryTables::angle(long p, long j) const {
  return dd::round(dd::mul(omega_[j], static_cast<double>(p)));
}

double RotaryTables::log_scale(long p, long j) const {
  return dd::round(dd::mul(log_zeta_[j], static_cast<double>(p - centre_)));
}

RotaryTables::Row RotaryTables::row(long p) const {
  const double* s = slot(p, 0);
  const long P = pairs_;
  return {s, s + P, s + 2 * P, s + 3 * P, s + 4 * P, s + 5 * P, s + 6 * P, s + 7 * P};
}

// ---------------------------------------------------------------------------------
// The cache. Keyed by the parameters the values depend on (not D, N, M, batch,
// heads); the centre and scale base only matter with xpos on.

namespace {

struct TableKey {
  long rotary;
  double base, base_rescale, interpolation;
  bool xpos;
  double scale_base;
  long centre;
  bool operator==(const TableKey&) const = default;
};

TableKey key_of(const Case& c) {
  return {c.rotary(), c.base, c.base_rescale, c.interpolation, c.xpos,
          c.xpos ? c.scale_base : 0.0, c.xpos ? c.centre() : 0};
}

struct CacheEntry {
  TableKey key;
  long first, last;
  std::size_t bytes;
  std::shared_future<std::shared_ptr<const RotaryTables>> table;
};

// Bounded so that a sweep over many cases does not hold every table it visited.
constexpr std::size_t kMaxEntries = 6;
constexpr std::size_t kMaxBytes = std::size_t(768) << 20;

std::mutex cache_mutex;
std::list<CacheEntry> cache;  // most recently used first

void evict_locked() {
  std::size_t bytes = 0, count = 0;
  for (auto it = cache.begin(); it != cache.end();) {
    bytes += it->bytes;
    ++count;
    const bool keep = it == cache.begin() || (count <= kMaxEntries && bytes <= kMaxBytes);
    it = keep ? std::next(it) : cache.erase(it);
  }
}

}  // namespace

std::shared_ptr<const RotaryTables> shared_tables(const Case& c) {
  validate(c);
  const TableKey key = key_of(c);
  const long first = c.lowest_position(), last = c.highest_position();
  std::promise<std::shared_ptr<const RotaryTables>> promise;
  std::shared_future<std::shared_ptr<const RotaryTables>> future;
  bool builder = false;
  {
    std::lock_guard lock(cache_mutex);
    for (auto it = cache.begin(); it != cache.end() && !future.valid(); ++it) {
      // Only the same position range: the two-level walk starts at `first`, so a
      // wider table can differ in the last bits, and results must not depend on
      // which cases ran before.
      if (it->key == key && it->first == first && it->last == last) {
        cache.splice(cache.begin(), cache, it);
        future = cache.front().table;
      }
    }
    if (!future.valid()) {
      const std::size_t bytes = std::size_t(last - first + 1) * 8 * c.pairs() * sizeof(double);
      future = promise.get_future().share();
      cache.push_front({key, first, last, bytes, future});
      evict_locked();
      builder = true;
    }
  }
  // Built outside the lock; concurrent requests for the same table wait on the future.
  if (builder) {
    try {
      promise.set_value(std::make_shared<const RotaryTables>(c, first, last));
    } catch (...) {
      promise.set_exception(std::current_exception());
      std::lock_guard lock(cache_mutex);
      cache.remove_if([&](const CacheEntry& e) {
        return e.key == key && e.first == first && e.last == last;
      });
    }
  }
  return future.get();
}

void clear_shared_tables() {
  std::lock_guard lock(cache_mutex);
  cache.clear();
}

}  // namespace xposcheck
