#include "xposcheck/reference/case.hpp"

#include <algorithm>
#include <cstdlib>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace xposcheck {
namespace {

// Sizes beyond this many elements would not fit any machine xposcheck runs on; the
// same bound on each extent keeps the products below from overflowing 64 bits in
// any but the final multiplications, which are checked anyway.
constexpr long kMaxExtent = 1L << 34;
constexpr std::size_t kMaxOutputElements = std::size_t{1} << 34;
// Positions minus the centre must stay exact in binary64: |p| <= 2^34, so |c| <= 2^52
// keeps |p - c| below 2^53.
constexpr long kMaxCentre = 1L << 52;

[[noreturn]] void fail(std::string_view name, const std::string& value,
                       std::string_view rule) {
  throw InvalidParameter(fmt::format("invalid {} = {}: {}", name, value, rule));
}

void require_extent(std::string_view name, long value, long min) {
  if (value < min || value > kMaxExtent) {
    fail(name, std::to_string(value), fmt::format("must be between {} and 2^34", min));
  }
}

// fmt's "{}" prints the shortest string that reads back as the same double, so
// messages and case ids are both exact and stable.
void require_finite_above(std::string_view name, double value, double bound, bool strict) {
  const bool ok = std::isfinite(value) && (strict ? value > bound : value >= bound);
  if (!ok) {
    fail(name, fmt::format("{}", value),
         fmt::format("must be finite and {} {}", strict ? ">" : ">=", bound));
  }
}

std::size_t checked_product(std::initializer_list<std::size_t> factors) {
  std::size_t product = 1;
  for (std::size_t f : factors) {
    if (__builtin_mul_overflow(product, f, &product)) {
      return std::numeric_limits<std::size_t>::max();
    }
  }
  return product;
}

void validate_rotary(const Case& c) {
  if (c.head_dim < 2 || c.head_dim % 2 != 0 || c.head_dim > kMaxExtent) {
    fail("head_dim", std::to_string(c.head_dim), "must be even and between 2 and 2^34");
  }
  const long r = c.rotary();
  if (r < 2 || r % 2 != 0 || r > c.head_dim) {
    fail("rotary_dim", std::to_string(r),
         fmt::format("must be even and 2 <= rotary_dim <= head_dim (= {})", c.head_dim));
  }
  require_finite_above("base", c.base, 1.0, true);
  require_finite_above("base_rescale", c.base_rescale, 1.0, false);
  if (c.base_rescale != 1.0) {
    // The NTK exponent R / (R - 2) is undefined for R = 2.
    if (r == 2) {
      fail("base_rescale", fmt::format("{}", c.base_rescale),
           "must be 1 when rotary_dim = 2 (the rescale exponent R/(R-2) needs R > 2)");
    }
    const double rescaled = c.base * std::pow(c.base_rescale, double(r) / double(r - 2));
    if (!std::isfinite(rescaled)) {
      fail("base_rescale", fmt::format("{}", c.base_rescale),
           fmt::format("the rescaled base base * base_rescale^(R/(R-2)) overflows "
                       "binary64 with base = {} and rotary_dim = {}",
                       c.base, r));
    }
  }
  require_finite_above("interpolation", c.interpolation, 1.0, false);
  require_finite_above("scale_base", c.scale_base, 0.0, true);
}

// Golden values are x * zeta_0^((p - c) / B) with zeta_0 = 0.4R / 1.4R = 2/7: beyond
// |p - c| / B = kMaxXposPower the scale alone leaves binary64 (e^700 ~ 1e304 leaves
// room for the inputs), and a golden value that is not finite judges nothing.
constexpr double kMaxXposPower = 700.0 / 1.2527629684953681;  // 700 / ln(7/2) ~ 558.8

// Tables hold every position from the smallest to the largest: explicit positions
// may be any integers, within a range that bounds them.
constexpr long kMaxPositionSpan = 1L << 22;

void validate_position_list(const Case& c) {
  const PositionList& p = *c.positions;
  if (static_cast<long>(p.keys.size()) != c.key_rows()) {
    fail("positions", fmt::format("{} values", p.keys.size()),
         fmt::format("must give one position per key row, M + N = {}", c.key_rows()));
  }
  if (std::labs(p.lowest) > kMaxExtent || std::labs(p.highest) > kMaxExtent) {
    fail("positions", fmt::format("{}..{}", p.lowest, p.highest), "must lie between -2^34 and 2^34");
  }
  if (p.highest - p.lowest + 1 > kMaxPositionSpan) {
    fail("positions", fmt::format("{}..{}", p.lowest, p.highest),
         "must span at most 2^22 positions (the tables cover the whole span)");
  }
  if (c.stream) fail("positions", "explicit", "cannot be given for a stream (its calls have their own)");
}

void validate_positions(const Case& c) {
  if (c.first_position && std::labs(*c.first_position) > kMaxExtent) {
    fail("first_position", std::to_string(*c.first_position), "must be between -2^34 and 2^34");
  }
  if (c.center && (*c.center < -kMaxCentre || *c.center > kMaxCentre)) {
    fail("center", std::to_string(*c.center),
         "must be an integer with |center| <= 2^52 (so positions minus the centre "
         "stay exact in binary64)");
  }
  if (c.positions) validate_position_list(c);
  if (!c.xpos) return;
  const long c0 = c.centre();
  const double reach = static_cast<double>(
      std::max(std::labs(c.lowest_position() - c0), std::labs(c.highest_position() - c0)));
  if (reach / c.scale_base > kMaxXposPower) {
    throw InvalidParameter(fmt::format(
        "invalid center = {} with scale_base = {}: positions {}..{} reach |p - center| / "
        "scale_base = {:.6g}, and the XPOS scale zeta^((p - center) / scale_base) leaves "
        "binary64 beyond {:.1f} (|p - center| / scale_base * ln(7/2) <= 700)",
        c0, c.scale_base, c.lowest_position(), c.highest_position(), reach / c.scale_base,
        kMaxXposPower));
  }
}

void validate_stream(const Case& c) {
  if (!c.stream) return;
  const StreamShape& s = *c.stream;
  if (s.step_rows < 1) fail("step_rows", std::to_string(s.step_rows), "must be >= 1");
  if (s.prefill < 1 || s.prefill >= c.seq_len) {
    fail("prefill", std::to_string(s.prefill),
         fmt::format("must be between 1 and seq_len - 1 (= {}): a stream has a prefill and at "
                     "least one step", c.seq_len - 1));
  }
  if ((c.seq_len - s.prefill) % s.step_rows != 0) {
    fail("step_rows", std::to_string(s.step_rows),
         fmt::format("must be >= 1 and divide seq_len - prefill (= {})", c.seq_len - s.prefill));
  }
}

// A packed batch: its sums are N and M, one batch row (the sequences are the batch),
// and every sequence is a valid case of its own.
void validate_packed(const Case& c) {
  const PackedBatch& p = *c.packed;
  if (p.sequences.empty()) fail("packed", "[]", "must hold at least one sequence");
  if (c.batch != 1) fail("batch", std::to_string(c.batch), "must be 1 for a packed batch (its sequences are the batch)");
  if (c.stream) fail("packed", packed_text(p), "cannot be a stream");
  if (c.positions) fail("packed", packed_text(p), "cannot be given with explicit positions");
  if (c.center) fail("center", std::to_string(*c.center), "cannot be given for a packed batch (each sequence has its own)");
  long n = 0, m = 0;
  for (const PackedSequence& s : p.sequences) {
    require_extent("seq_len", s.seq_len, 1);
    require_extent("mem_len", s.mem_len, 0);
    n += s.seq_len;
    m += s.mem_len;
  }
  if (n != c.seq_len || m != c.mem_len) {
    fail("packed", packed_text(p),
         fmt::format("its sequences hold N = {} and M = {} rows, the case says seq_len = {} and mem_len = {}",
                     n, m, c.seq_len, c.mem_len));
  }
  for (long i = 0; i < p.count(); ++i) {
    try {
      validate(c.sequence_case(i));
    } catch (const InvalidParameter& e) {
      throw InvalidParameter(fmt::format("packed sequence {}: {}", i, e.what()));
    }
  }
}

void validate_sizes(const Case& c) {
  require_extent("seq_len", c.seq_len, 1);
  require_extent("mem_len", c.mem_len, 0);
  require_extent("batch", c.batch, 1);
  require_extent("heads", c.heads, 1);
  const std::size_t total = c.output_elements();
  if (total > kMaxOutputElements) {
    throw InvalidParameter(fmt::format(
        "invalid sizes batch = {}, heads = {}, seq_len = {}, mem_len = {}, head_dim = {}: "
        "q_out and k_out would hold {} elements, above the limit of 2^34",
        c.batch, c.heads, c.seq_len, c.mem_len, c.head_dim,
        total == std::numeric_limits<std::size_t>::max() ? std::string("more than 2^64")
                                                         : std::to_string(total)));
  }
}

}  // namespace

std::string_view layout_name(Layout l) {
  return l == Layout::half ? "half" : "interleaved";
}

Layout other_layout(Layout l) { return l == Layout::half ? Layout::interleaved : Layout::half; }

std::optional<Layout> parse_layout(std::string_view name) {
  if (name == "half") return Layout::half;
  if (name == "interleaved") return Layout::interleaved;
  return std::nullopt;
}

Shape Case::q_shape() const {
  return {std::size_t(batch), std::size_t(heads), std::size_t(seq_len), std::size_t(head_dim)};
}

Shape Case::k_shape() const {
  return {std::size_t(batch), std::size_t(heads), std::size_t(key_rows()),
          std::size_t(head_dim)};
}

Shape Case::logits_shape() const {
  return {std::size_t(batch), std::size_t(heads), std::size_t(seq_len),
          std::size_t(key_rows())};
}

// Saturates at SIZE_MAX instead of wrapping, so validate() can report oversized
// cases whose true count does not fit in 64 bits.
std::size_t Case::output_elements() const {
  const std::size_t rows = checked_product({std::size_t(2), std::size_t(seq_len)});
  std::size_t all_rows = 0;
  if (__builtin_add_overflow(rows, std::size_t(mem_len), &all_rows)) {
    return std::numeric_limits<std::size_t>::max();
  }
  return checked_product(
      {std::size_t(batch), std::size_t(heads), all_rows, std::size_t(head_dim)});
}

void validate(const Case& c) {
  validate_rotary(c);
  validate_sizes(c);
  if (c.packed) {
    validate_packed(c);
    return;
  }
  validate_positions(c);
  validate_stream(c);
}

std::string_view centre_rule_name(CentreRule r) {
  switch (r) {
    case CentreRule::queries_floor: return "queries-floor";
    case CentreRule::queries_ceil: return "queries-ceil";
    case CentreRule::keys_floor: return "keys-floor";
    case CentreRule::keys_ceil: return "keys-ceil";
  }
  return "queries-floor";
}

std::optional<CentreRule> parse_centre_rule(std::string_view name) {
  for (CentreRule r : {CentreRule::queries_floor, CentreRule::queries_ceil, CentreRule::keys_floor,
                       CentreRule::keys_ceil}) {
    if (centre_rule_name(r) == name) return r;
  }
  return std::nullopt;
}

// The rules take the middle of a range of positions: the rows' own for the frame's
// contiguous positions, the smallest to the largest for explicit ones.
long Case::centre_by(CentreRule rule) const {
  const long q_low = positions ? positions->lowest_query : first_query_position();
  const long q_span = positions ? positions->highest_query - q_low + 1 : seq_len;
  const long k_low = positions ? positions->lowest : first_key_position();
  const long k_span = positions ? positions->highest - k_low + 1 : key_rows();
  switch (rule) {
    case CentreRule::queries_floor: return q_low + q_span / 2;
    case CentreRule::queries_ceil: return q_low + (q_span + 1) / 2;
    case CentreRule::keys_floor: return k_low + k_span / 2;
    case CentreRule::keys_ceil: return k_low + (k_span + 1) / 2;
  }
  return q_low + q_span / 2;
}

std::shared_ptr<const PositionList> PositionList::of(std::vector<long> keys, long queries) {
  auto list = std::make_shared<PositionList>();
  list->keys = std::move(keys);
  if (list->keys.empty()) return list;
  const auto [lo, hi] = std::minmax_element(list->keys.begin(), list->keys.end());
  list->lowest = *lo;
  list->highest = *hi;
  const auto first_query = list->keys.end() - std::min<long>(queries, static_cast<long>(list->keys.size()));
  const auto [qlo, qhi] = std::minmax_element(first_query, list->keys.end());
  list->lowest_query = first_query == list->keys.end() ? *lo : *qlo;
  list->highest_query = first_query == list->keys.end() ? *hi : *qhi;
  return list;
}

std::shared_ptr<const PackedBatch> PackedBatch::of(std::vector<PackedSequence> sequences) {
  auto p = std::make_shared<PackedBatch>();
  p->sequences = std::move(sequences);
  p->first_query_row = {0};
  p->first_key_row = {0};
  for (const PackedSequence& s : p->sequences) {
    p->first_query_row.push_back(p->first_query_row.back() + s.seq_len);
    p->first_key_row.push_back(p->first_key_row.back() + s.mem_len + s.seq_len);
  }
  return p;
}

namespace {
long sequence_holding(const std::vector<long>& first_rows, long row) {
  const auto after = std::upper_bound(first_rows.begin(), first_rows.end(), row);
  return std::max(0L, static_cast<long>(after - first_rows.begin()) - 1);
}
}  // namespace

long PackedBatch::sequence_of_query_row(long m) const { return sequence_holding(first_query_row, m); }
long PackedBatch::sequence_of_key_row(long n) const { return sequence_holding(first_key_row, n); }

Case Case::sequence_case(long i) const {
  const PackedSequence& s = packed->sequences[static_cast<std::size_t>(i)];
  Case one = *this;
  one.packed.reset();
  one.seq_len = s.seq_len;
  one.mem_len = s.mem_len;
  one.first_position = s.first_position ? s.first_position : first_position;
  one.center = s.center;
  return one;
}

long Case::packed_key_position(long n) const {
  const long i = packed->sequence_of_key_row(n);
  const PackedSequence& s = packed->sequences[static_cast<std::size_t>(i)];
  const long first = s.first_position ? *s.first_position : first_position.value_or(-s.mem_len);
  return first + n - packed->first_key_row[static_cast<std::size_t>(i)];
}

long Case::packed_query_position(long m) const {
  const long i = packed->sequence_of_query_row(m);
  const auto at = static_cast<std::size_t>(i);
  return packed_key_position(packed->first_key_row[at] + packed->sequences[at].mem_len + m -
                             packed->first_query_row[at]);
}

long Case::lowest_position() const {
  if (!packed) return positions ? positions->lowest : first_key_position();
  long low = key_position(0);
  for (long i = 0; i < packed->count(); ++i) low = std::min(low, key_position(packed->first_key_row[static_cast<std::size_t>(i)]));
  return low;
}

long Case::highest_position() const {
  if (!packed) return positions ? positions->highest : last_position();
  long high = key_position(0);
  for (long i = 1; i <= packed->count(); ++i) high = std::max(high, key_position(packed->first_key_row[static_cast<std::size_t>(i)] - 1));
  return high;
}

Case Case::shifted(long shift) const {
  Case out = *this;
  out.first_position = first_key_position() + shift;
  out.center = centre() + shift;
  if (positions) {
    std::vector<long> moved = positions->keys;
    for (long& p : moved) p += shift;
    out.positions = PositionList::of(std::move(moved), seq_len);
  }
  return out;
}

long Case::call_first_query_row(long i) const {
  return i == 0 ? 0 : stream->prefill + (i - 1) * stream->step_rows;
}

long Case::call_of_query_row(long m) const {
  if (!stream || m < stream->prefill) return 0;
  return 1 + (m - stream->prefill) / stream->step_rows;
}

Case Case::stream_call(long i) const {
  Case call = *this;
  call.stream.reset();
  call.center = centre();
  call.first_position = key_position(call_first_key_row(i));
  call.seq_len = i == 0 ? stream->prefill : stream->step_rows;
  call.mem_len = i == 0 ? mem_len : 0;
  return call;
}

std::uint32_t position_digest(const PositionList& p) {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a over the positions
  for (long v : p.keys) {
    for (int b = 0; b < 8; ++b) {
      h ^= (static_cast<std::uint64_t>(v) >> (8 * b)) & 0xff;
      h *= 1099511628211ull;
    }
  }
  return static_cast<std::uint32_t>(h ^ (h >> 32));
}

std::uint32_t packed_digest(const PackedBatch& p) {
  std::vector<long> values;
  for (const PackedSequence& s : p.sequences) {
    values.insert(values.end(), {s.seq_len, s.mem_len, s.first_position ? 1L : 0L, s.first_position.value_or(0),
                                 s.center ? 1L : 0L, s.center.value_or(0)});
  }
  return position_digest(PositionList{values, 0, 0, 0, 0});
}

std::string packed_text(const PackedBatch& p) {
  std::string out;
  for (const PackedSequence& s : p.sequences) {
    if (!out.empty()) out += ",";
    out += std::to_string(s.seq_len);
    if (s.mem_len != 0) out += fmt::format("+{}", s.mem_len);
    if (s.first_position) out += fmt::format("@{}", *s.first_position);
    if (s.center) out += fmt::format("c{}", *s.center);
  }
  return out;
}

std::string case_id(const Case& c) {
  std::string id = fmt::format("D{}-N{}", c.head_dim, c.seq_len);
  if (c.mem_len != 0) id += fmt::format("-M{}", c.mem_len);
  if (c.rotary() != c.head_dim) id += fmt::format("-R{}", c.rotary());
  if (c.layout != Layout::half) id += fmt::format("-{}", layout_name(c.layout));
  if (!c.xpos) id += "-noxpos";
  // B and c are listed even with XPOS off, where they have no effect, so that a grid
  // over them never gives two of its points the same id.
  if (c.scale_base != 512.0) id += fmt::format("-B{}", c.scale_base);
  if (c.base != 10000.0) id += fmt::format("-base{}", c.base);
  if (c.base_rescale != 1.0) id += fmt::format("-f{}", c.base_rescale);
  if (c.interpolation != 1.0) id += fmt::format("-a{}", c.interpolation);
  if (c.first_position) id += fmt::format("-o{}", *c.first_position);
  // An explicit centre is listed by value unless the rule gives the same; a rule by name.
  if (!c.packed && c.centre() != c.centre_by(c.centre_rule)) id += fmt::format("-c{}", c.centre());
  else if (c.centre_rule != CentreRule::queries_floor)
    id += fmt::format("-c{}", centre_rule_name(c.centre_rule));
  if (c.batch != 1) id += fmt::format("-b{}", c.batch);
  if (c.heads != 1) id += fmt::format("-h{}", c.heads);
  if (c.stream) id += fmt::format("-stream{}+{}x{}", c.stream->prefill, c.stream_steps(), c.stream->step_rows);
  if (c.positions) id += fmt::format("-pos{:08x}", position_digest(*c.positions));
  // Short lists spelled out, long ones by count and digest.
  if (c.packed && c.packed->count() <= 4) {
    std::string text = packed_text(*c.packed);
    std::replace(text.begin(), text.end(), ',', '_');
    std::replace(text.begin(), text.end(), '@', 'o');
    id += "-pack" + text;
  }
  else if (c.packed) id += fmt::format("-pack{}x{:08x}", c.packed->count(), packed_digest(*c.packed));
  return id;
}

}  // namespace xposcheck
