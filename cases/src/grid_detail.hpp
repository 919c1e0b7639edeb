#pragma once
// Internals shared by the grid reader's translation units: located errors, the axis
// table and the [tolerance] reader. Nothing here is part of the public API.
#include <array>
#include <cstdint>
#include <utility>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <toml++/toml.h>

#include "xposcheck/cases/grid.hpp"

namespace xposcheck::grid_detail {

// ---- located errors -------------------------------------------------------

long line_of(const toml::node& n);
long line_of(const toml::key& k);

[[noreturn]] void fail(const std::string& file, long line, std::string_view key,
                       const std::string& problem);

// The entries of `t` in the order they are written (toml++ keeps tables sorted by
// key), so that the first problem reported is the first one in the file.
std::vector<std::pair<const toml::key*, const toml::node*>> in_file_order(const toml::table& t);

// "string \"abc\"", "float 1.5", "table", ... for "got ..." in type errors.
std::string describe(const toml::node& n);

// The choice closest to `word` by edit distance, or "" when none is close enough to
// be a plausible typo.
std::string closest(std::string_view word, std::span<const std::string_view> choices);

// "unknown key 'seqlen' (did you mean 'seq_len'?)" or a list of the valid keys.
std::string unknown_key_problem(std::string_view key, std::span<const std::string_view> valid);

// ---- axes -----------------------------------------------------------------

// The fixed expansion order: the first axis varies slowest. docs/grids.md lists it.
enum class Axis {
  head_dim, rotary, seq_len, mem_len, layout, xpos, scale_base, base, base_rescale,
  interpolation, center, batch, heads, first_position,
  prefill, step_rows, steps,  // streams: applied last, in this order (steps sets seq_len)
  positions,                  // explicit positions, drawn once N and M are known
  packed,                     // a packed batch: sets N and M to its sums
};
inline constexpr std::size_t kAxisCount = 19;

// "full" (rotary_dim) and "default" (center): the parameter's default.
struct DefaultValue {
  bool operator==(const DefaultValue&) const = default;
};
// long: an integer axis or rotary_dim; double: a real axis or rotary_fraction.
// CentreRule: center given as a rule ("keys-ceil").
// positions = "random:MAX": every row at a position drawn uniformly from 0..MAX-1, as
// vLLM's rotary tests draw position ids.
struct RandomPositions {
  long max = 0;
  bool operator==(const RandomPositions&) const = default;
};
// packed = "64, 17+8, 1+100@20": one packed batch, its sequences' N, +M and @first
// key position.
struct PackedValue {
  std::vector<PackedSequence> sequences;
  bool operator==(const PackedValue&) const = default;
};
using AxisValue = std::variant<long, double, bool, Layout, DefaultValue, CentreRule, RandomPositions, PackedValue>;

struct AxisSetting {
  std::string key;   // as written: rotary_fraction and rotary_dim share Axis::rotary
  long line = 0;
  std::vector<AxisValue> values;
  std::vector<long> value_lines;  // where each value is written
};
using AxisTable = std::array<std::optional<AxisSetting>, kAxisCount>;

// Every key that may appear in [axes], [[grid]] and [[exclude]].
std::span<const std::string_view> axis_keys();

// Reads the axis keys of `t`; any other key is an error.
AxisTable read_axes(const toml::table& t, const std::string& file);

// Sets the axis on `c`; throws InvalidParameter when a rotary_fraction does not give
// an even rotary_dim for this head_dim (so head_dim must be applied first).
void apply(Axis a, const AxisValue& v, Case& c);

// Whether `c`'s effective parameter equals `v` (exclude matching): rotary_dim "full"
// matches R == D, center "default" matches a centre of floor(N/2).
bool matches(Axis a, const AxisValue& v, const Case& c);

// The axes a validate() message names, in order of appearance: they tell which key
// of the file holds the offending value.
std::vector<Axis> axes_named_in(std::string_view message);

// ---- expansion ------------------------------------------------------------

struct SubGrid {
  AxisTable axes;  // [axes] with this [[grid]]'s keys laid over it
  long line = 0;   // of the [[grid]] header, or of [axes] when there is no [[grid]]
};

struct Exclude {
  AxisTable axes;
  long line = 0;
};

// Cartesian product of each sub-grid, excludes, validation, duplicates removed, then
// one GridCase per seed (seeds vary fastest).
std::vector<GridCase> expand(const std::vector<SubGrid>& grids, const std::vector<Exclude>& excludes,
                             const std::vector<std::uint64_t>& seeds, const std::string& file);

// Every parameter with rotary_dim and center resolved: equal texts, equal computation.
std::string canonical_params(const Case& c);

// ---- tolerance --------------------------------------------------------------

ToleranceOverrides read_tolerance(const toml::table& t, const std::string& file);

// A canonical text of the overrides, for the fingerprint.
std::string canonical_text(const ToleranceOverrides& o);

}  // namespace xposcheck::grid_detail
