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

void validate_positions(const Case& c) {
  if (c.first_position && std::labs(*c.first_position) > kMaxExtent) {
    fail("first_position", std::to_string(*c.first_position), "must be between -2^34 and 2^34");
  }
  if (c.center && (*c.center < -kMaxCentre || *c.center > kMaxCentre)) {
    fail("center", std::to_string(*c.center),
         "must be an integer with |center| <= 2^52 (so positions minus the centre "
         "stay exact in binary64)");
  }
  if (!c.xpos) return;
  const long c0 = c.centre();
  const double reach = static_cast<double>(
      std::max(std::labs(c.first_key_position() - c0), std::labs(c.last_position() - c0)));
  if (reach / c.scale_base > kMaxXposPower) {
    throw InvalidParameter(fmt::format(
        "invalid center = {} with scale_base = {}: positions {}..{} reach |p - center| / "
        "scale_base = {:.6g}, and the XPOS scale zeta^((p - center) / scale_base) leaves "
        "binary64 beyond {:.1f} (|p - center| / scale_base * ln(7/2) <= 700)",
        c0, c.scale_base, c.first_key_position(), c.last_position(), reach / c.scale_base,
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

long Case::centre_by(CentreRule rule) const {
  switch (rule) {
    case CentreRule::queries_floor: return first_query_position() + seq_len / 2;
    case CentreRule::queries_ceil: return first_query_position() + (seq_len + 1) / 2;
    case CentreRule::keys_floor: return first_key_position() + key_rows() / 2;
    case CentreRule::keys_ceil: return first_key_position() + (key_rows() + 1) / 2;
  }
  return first_query_position() + seq_len / 2;
}

Case Case::shifted(long shift) const {
  Case out = *this;
  out.first_position = first_key_position() + shift;
  out.center = centre() + shift;
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
  if (c.centre() != c.centre_by(c.centre_rule)) id += fmt::format("-c{}", c.centre());
  else if (c.centre_rule != CentreRule::queries_floor)
    id += fmt::format("-c{}", centre_rule_name(c.centre_rule));
  if (c.batch != 1) id += fmt::format("-b{}", c.batch);
  if (c.heads != 1) id += fmt::format("-h{}", c.heads);
  if (c.stream) id += fmt::format("-stream{}+{}x{}", c.stream->prefill, c.stream_steps(), c.stream->step_rows);
  return id;
}

}  // namespace xposcheck
