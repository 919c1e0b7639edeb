// The axes of a grid: which keys exist, what values each accepts, and how a value
// sets (or is matched against) a Case.
#include <algorithm>
#include <cctype>
#include <cmath>

#include <fmt/format.h>

#include "grid_detail.hpp"
#include "xposcheck/reference/inputs.hpp"

namespace xposcheck::grid_detail {

namespace {

enum class Kind {
  integer,          // whole numbers only: a float 64.0 for head_dim is a mistake
  real,             // integers are accepted and widened
  boolean,
  layout,
  integer_or_full,  // rotary_dim
  fraction,         // rotary_fraction
  integer_or_default,  // first_position
  centre,              // center: an integer, "default" or a CentreRule name
  positions,           // "default" or "random:MAX"
  packed,              // "N[+M][@P], ..."
};

struct AxisInfo {
  std::string_view key;
  Axis axis;
  Kind kind;
};

// Order of this table = order of axis_keys() in messages; Axis order drives expansion.
constexpr AxisInfo kAxes[] = {
    {"head_dim", Axis::head_dim, Kind::integer},
    {"rotary_dim", Axis::rotary, Kind::integer_or_full},
    {"rotary_fraction", Axis::rotary, Kind::fraction},
    {"seq_len", Axis::seq_len, Kind::integer},
    {"mem_len", Axis::mem_len, Kind::integer},
    {"layout", Axis::layout, Kind::layout},
    {"xpos", Axis::xpos, Kind::boolean},
    {"scale_base", Axis::scale_base, Kind::real},
    {"base", Axis::base, Kind::real},
    {"base_rescale", Axis::base_rescale, Kind::real},
    {"interpolation", Axis::interpolation, Kind::real},
    {"center", Axis::center, Kind::centre},
    {"batch", Axis::batch, Kind::integer},
    {"heads", Axis::heads, Kind::integer},
    {"first_position", Axis::first_position, Kind::integer_or_default},
    {"prefill", Axis::prefill, Kind::integer},
    {"step_rows", Axis::step_rows, Kind::integer},
    {"steps", Axis::steps, Kind::integer},
    {"positions", Axis::positions, Kind::positions},
    {"packed", Axis::packed, Kind::packed},
};

constexpr std::array<std::string_view, std::size(kAxes)> kAxisKeys = [] {
  std::array<std::string_view, std::size(kAxes)> keys{};
  for (std::size_t i = 0; i < std::size(kAxes); ++i) keys[i] = kAxes[i].key;
  return keys;
}();

const AxisInfo* find_axis(std::string_view key) {
  for (const AxisInfo& info : kAxes)
    if (info.key == key) return &info;
  return nullptr;
}

std::string_view expected(Kind k) {
  switch (k) {
    case Kind::integer: return "an integer";
    case Kind::real: return "a number";
    case Kind::boolean: return "true or false";
    case Kind::layout: return "\"half\" or \"interleaved\"";
    case Kind::integer_or_full: return "an integer or \"full\"";
    case Kind::fraction: return "a number in (0, 1]";
    case Kind::integer_or_default: return "an integer or \"default\"";
    case Kind::centre:
      return "an integer, \"default\", \"queries-floor\", \"queries-ceil\", \"keys-floor\" or "
             "\"keys-ceil\"";
    case Kind::positions: return "\"default\" or \"random:MAX\" (MAX an integer from 1 to 2^22)";
    case Kind::packed:
      return "a packed batch \"N[+M][@P], ...\" (1 to 4096 sequences: N >= 1 rows, M memory rows, P the "
             "first key position)";
  }
  return "";
}

// A whole number of at most 12 digits, optionally negative, at text[at...]; at moves
// past it.
std::optional<long> read_number(std::string_view text, std::size_t& at, bool negative_ok) {
  std::size_t end = at;
  if (negative_ok && end < text.size() && text[end] == '-') ++end;
  const std::size_t digits = end;
  while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
  if (end == digits || end - digits > 12) return std::nullopt;
  const long value = std::stol(std::string(text.substr(at, end - at)));
  at = end;
  return value;
}

// "64, 17+8, 1+100@20": None for anything else.
std::optional<std::vector<PackedSequence>> parse_packed(std::string_view text) {
  constexpr std::size_t kMaxSequences = 4096;
  std::vector<PackedSequence> out;
  std::size_t at = 0;
  auto skip_spaces = [&] { while (at < text.size() && text[at] == ' ') ++at; };
  while (true) {
    skip_spaces();
    PackedSequence s;
    const auto n = read_number(text, at, false);
    if (!n) return std::nullopt;
    s.seq_len = *n;
    if (at < text.size() && text[at] == '+') {
      const auto m = read_number(text, ++at, false);
      if (!m) return std::nullopt;
      s.mem_len = *m;
    }
    if (at < text.size() && text[at] == '@') {
      const auto p = read_number(text, ++at, true);
      if (!p) return std::nullopt;
      s.first_position = *p;
    }
    out.push_back(s);
    skip_spaces();
    if (at == text.size()) break;
    if (text[at] != ',' || out.size() >= kMaxSequences) return std::nullopt;
    ++at;
  }
  return out;
}

std::optional<AxisValue> convert(Kind k, const toml::node& n) {
  auto integer = n.value_exact<std::int64_t>();
  auto real = n.value<double>();  // also reads integers
  auto text = n.value_exact<std::string>();
  switch (k) {
    case Kind::integer:
      if (integer) return AxisValue{static_cast<long>(*integer)};
      break;
    case Kind::real:
      if (real && (n.is_integer() || n.is_floating_point())) return AxisValue{*real};
      break;
    case Kind::boolean:
      if (auto b = n.value_exact<bool>()) return AxisValue{*b};
      break;
    case Kind::layout:
      if (text) {
        if (auto l = parse_layout(*text)) return AxisValue{*l};
      }
      break;
    case Kind::integer_or_full:
      if (integer) return AxisValue{static_cast<long>(*integer)};
      if (text && *text == "full") return AxisValue{DefaultValue{}};
      break;
    case Kind::fraction:
      if (real && (n.is_integer() || n.is_floating_point()) && *real > 0 && *real <= 1)
        return AxisValue{*real};
      break;
    case Kind::integer_or_default:
      if (integer) return AxisValue{static_cast<long>(*integer)};
      if (text && *text == "default") return AxisValue{DefaultValue{}};
      break;
    case Kind::positions:
      if (text && *text == "default") return AxisValue{DefaultValue{}};
      if (text && text->starts_with("random:")) {
        const std::string digits = text->substr(7);
        const bool number = !digits.empty() && digits.size() <= 8 &&
                            std::all_of(digits.begin(), digits.end(), [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); });
        const long max = number ? std::stol(digits) : 0;
        if (max >= 1 && max <= (1L << 22)) return AxisValue{RandomPositions{max}};
      }
      break;
    case Kind::packed:
      if (text) {
        if (auto sequences = parse_packed(*text)) return AxisValue{PackedValue{std::move(*sequences)}};
      }
      break;
    case Kind::centre:
      if (integer) return AxisValue{static_cast<long>(*integer)};
      if (text && *text == "default") return AxisValue{DefaultValue{}};
      if (text) {
        if (auto rule = parse_centre_rule(*text)) return AxisValue{*rule};
      }
      break;
  }
  return std::nullopt;
}

void read_value(const AxisInfo& info, const toml::node& n, AxisSetting& out,
                const std::string& file) {
  auto v = convert(info.kind, n);
  if (!v) {
    fail(file, line_of(n), info.key,
         fmt::format("expected {}{}, got {}", expected(info.kind),
                     n.is_array() ? " (lists do not nest)" : " or a list of them", describe(n)));
  }
  out.values.push_back(*v);
  out.value_lines.push_back(line_of(n));
}

AxisSetting read_setting(const AxisInfo& info, const toml::key& key, const toml::node& n,
                         const std::string& file) {
  AxisSetting s{std::string(info.key), line_of(key), {}, {}};
  if (const toml::array* list = n.as_array()) {
    if (list->empty()) fail(file, line_of(key), info.key, "empty list: give at least one value");
    for (const toml::node& element : *list) read_value(info, element, s, file);
  } else {
    read_value(info, n, s, file);
  }
  return s;
}

// Drawn from the case's sizes and MAX alone, so that a grid always yields the same.
std::shared_ptr<const PositionList> random_positions(const Case& c, long max) {
  if (c.key_rows() > (1L << 24)) {
    throw InvalidParameter(fmt::format("invalid positions = \"random:{}\": at most 2^24 rows may be given "
                                       "explicit positions, this case has {}", max, c.key_rows()));
  }
  SplitMix64 rng(0x706f736974696f6eull ^ (static_cast<std::uint64_t>(max) << 40) ^
                 (static_cast<std::uint64_t>(c.seq_len) << 20) ^ static_cast<std::uint64_t>(c.mem_len));
  std::vector<long> keys(static_cast<std::size_t>(c.key_rows()));
  for (long& p : keys) p = static_cast<long>(rng.next() % static_cast<std::uint64_t>(max));
  return PositionList::of(std::move(keys), c.seq_len);
}

}  // namespace

std::span<const std::string_view> axis_keys() { return kAxisKeys; }

AxisTable read_axes(const toml::table& t, const std::string& file) {
  AxisTable table;
  for (auto [key_ptr, node_ptr] : in_file_order(t)) {
    const toml::key& key = *key_ptr;
    const toml::node& node = *node_ptr;
    const AxisInfo* info = find_axis(key.str());
    if (!info) fail(file, line_of(key), key.str(), unknown_key_problem(key.str(), kAxisKeys));
    auto& slot = table[static_cast<std::size_t>(info->axis)];
    if (slot) {
      fail(file, line_of(key), key.str(),
           fmt::format("'{}' is already given on line {}: give rotary_dim or rotary_fraction, "
                       "not both",
                       slot->key, slot->line));
    }
    slot = read_setting(*info, key, node, file);
  }
  return table;
}

void apply(Axis a, const AxisValue& v, Case& c) {
  switch (a) {
    case Axis::head_dim: c.head_dim = std::get<long>(v); break;
    case Axis::rotary:
      if (std::holds_alternative<DefaultValue>(v)) {
        c.rotary_dim.reset();
      } else if (auto* dim = std::get_if<long>(&v)) {
        c.rotary_dim = *dim;
      } else {
        double fraction = std::get<double>(v);
        double r = fraction * static_cast<double>(c.head_dim);
        long rounded = std::lround(r);
        if (std::abs(r - static_cast<double>(rounded)) > 1e-9 || rounded % 2 != 0 || rounded < 2) {
          throw InvalidParameter(fmt::format(
              "invalid rotary_fraction = {}: {} * head_dim ({}) = {} is not an even integer >= 2",
              fraction, fraction, c.head_dim, r));
        }
        c.rotary_dim = rounded;
      }
      break;
    case Axis::seq_len: c.seq_len = std::get<long>(v); break;
    case Axis::mem_len: c.mem_len = std::get<long>(v); break;
    case Axis::layout: c.layout = std::get<Layout>(v); break;
    case Axis::xpos: c.xpos = std::get<bool>(v); break;
    case Axis::scale_base: c.scale_base = std::get<double>(v); break;
    case Axis::base: c.base = std::get<double>(v); break;
    case Axis::base_rescale: c.base_rescale = std::get<double>(v); break;
    case Axis::interpolation: c.interpolation = std::get<double>(v); break;
    case Axis::center:
      c.center.reset();
      c.centre_rule = CentreRule::queries_floor;
      if (auto* centre = std::get_if<long>(&v)) c.center = *centre;
      if (auto* rule = std::get_if<CentreRule>(&v)) c.centre_rule = *rule;
      break;
    case Axis::batch: c.batch = std::get<long>(v); break;
    case Axis::heads: c.heads = std::get<long>(v); break;
    case Axis::first_position:
      if (auto* first = std::get_if<long>(&v)) c.first_position = *first;
      else c.first_position.reset();
      break;
    case Axis::prefill:
      if (!c.stream) c.stream.emplace();
      c.stream->prefill = std::get<long>(v);
      break;
    case Axis::step_rows:
      if (!c.stream) c.stream.emplace();
      c.stream->step_rows = std::get<long>(v);
      break;
    case Axis::positions:
      if (auto* random = std::get_if<RandomPositions>(&v)) c.positions = random_positions(c, random->max);
      else c.positions.reset();
      break;
    case Axis::packed: {
      const auto& sequences = std::get<PackedValue>(v).sequences;
      c.seq_len = c.mem_len = 0;
      for (const PackedSequence& s : sequences) {
        c.seq_len += s.seq_len;
        c.mem_len += s.mem_len;
      }
      c.packed = PackedBatch::of(sequences);
      break;
    }
    case Axis::steps: {
      const long steps = std::get<long>(v);
      if (steps < 1 || steps > (1L << 30)) {
        throw InvalidParameter(fmt::format("invalid steps = {}: must be between 1 and 2^30", steps));
      }
      if (!c.stream) c.stream.emplace();
      long rows = 0;
      if (__builtin_mul_overflow(steps, c.stream->step_rows, &rows) ||
          __builtin_add_overflow(rows, c.stream->prefill, &c.seq_len)) {
        throw InvalidParameter(fmt::format("invalid steps = {}: prefill + steps x step_rows overflows", steps));
      }
      break;
    }
  }
}

bool matches(Axis a, const AxisValue& v, const Case& c) {
  switch (a) {
    case Axis::rotary:
      if (std::holds_alternative<DefaultValue>(v)) return c.rotary() == c.head_dim;
      if (auto* r = std::get_if<long>(&v)) return c.rotary() == *r;
      return std::abs(std::get<double>(v) * static_cast<double>(c.head_dim) -
                      static_cast<double>(c.rotary())) < 1e-9;
    case Axis::center:
      if (auto* centre = std::get_if<long>(&v)) return c.centre() == *centre;
      if (auto* rule = std::get_if<CentreRule>(&v)) return c.centre() == c.centre_by(*rule);
      return c.centre() == c.centre_by(CentreRule::queries_floor);
    case Axis::first_position:
      if (auto* first = std::get_if<long>(&v)) return c.first_key_position() == *first;
      return !c.first_position;
    case Axis::head_dim: return c.head_dim == std::get<long>(v);
    case Axis::seq_len: return c.seq_len == std::get<long>(v);
    case Axis::mem_len: return c.mem_len == std::get<long>(v);
    case Axis::layout: return c.layout == std::get<Layout>(v);
    case Axis::xpos: return c.xpos == std::get<bool>(v);
    case Axis::scale_base: return c.scale_base == std::get<double>(v);
    case Axis::base: return c.base == std::get<double>(v);
    case Axis::base_rescale: return c.base_rescale == std::get<double>(v);
    case Axis::interpolation: return c.interpolation == std::get<double>(v);
    case Axis::batch: return c.batch == std::get<long>(v);
    case Axis::heads: return c.heads == std::get<long>(v);
    case Axis::prefill: return c.stream && c.stream->prefill == std::get<long>(v);
    case Axis::step_rows: return c.stream && c.stream->step_rows == std::get<long>(v);
    case Axis::steps: return c.stream && c.stream_steps() == std::get<long>(v);
    case Axis::positions:
      if (auto* random = std::get_if<RandomPositions>(&v)) return c.positions && c.positions->highest < random->max;
      return !c.positions;
    case Axis::packed: return c.packed && c.packed->sequences == std::get<PackedValue>(v).sequences;
  }
  return false;
}

std::vector<Axis> axes_named_in(std::string_view message) {
  auto is_word = [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_'; };
  std::vector<std::pair<std::size_t, Axis>> found;
  for (const AxisInfo& info : kAxes) {
    for (std::size_t at = message.find(info.key); at != std::string_view::npos;
         at = message.find(info.key, at + 1)) {
      std::size_t end = at + info.key.size();
      bool whole = (at == 0 || !is_word(message[at - 1])) &&
                   (end == message.size() || !is_word(message[end]));
      if (whole) {
        found.emplace_back(at, info.axis);
        break;
      }
    }
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Axis> axes;
  for (const auto& [at, axis] : found) axes.push_back(axis);
  return axes;
}

}  // namespace xposcheck::grid_detail
