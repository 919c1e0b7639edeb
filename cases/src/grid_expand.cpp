// Expansion of sub-grids into cases: the order is fixed (sub-grids in declaration
// order, then axes in Axis order, first axis slowest, seeds fastest) so that a grid
// file always yields the same list, which shards and fingerprints rely on.
#include <algorithm>
#include <map>
#include <unordered_set>

#include <fmt/format.h>

#include "grid_detail.hpp"

namespace xposcheck::grid_detail {

namespace {

struct Present {
  Axis axis;
  const AxisSetting* setting;
};

std::vector<Present> present_axes(const AxisTable& t) {
  std::vector<Present> out;
  for (std::size_t i = 0; i < kAxisCount; ++i)
    if (t[i]) out.push_back({static_cast<Axis>(i), &*t[i]});
  return out;
}

void require(const SubGrid& g, Axis a, std::string_view key, const std::string& file) {
  if (!g.axes[static_cast<std::size_t>(a)]) {
    fail(file, g.line, key, "missing: every grid needs head_dim and seq_len (in [axes] or here)");
  }
}

// A case's length is seq_len, or for a stream prefill + steps x step_rows.
void require_length(const SubGrid& g, const std::string& file) {
  const auto& seq_len = g.axes[static_cast<std::size_t>(Axis::seq_len)];
  const auto& prefill = g.axes[static_cast<std::size_t>(Axis::prefill)];
  const auto& steps = g.axes[static_cast<std::size_t>(Axis::steps)];
  const auto& step_rows = g.axes[static_cast<std::size_t>(Axis::step_rows)];
  if (g.axes[static_cast<std::size_t>(Axis::packed)]) {
    for (const auto& given : {seq_len, g.axes[static_cast<std::size_t>(Axis::mem_len)], prefill, steps, step_rows}) {
      if (given) {
        fail(file, given->line, given->key,
             "a packed batch's sizes are its sequences' (packed = \"N+M, ...\"): give them there, not " + given->key);
      }
    }
    return;
  }
  if (steps || prefill || step_rows) {
    if (seq_len) {
      fail(file, seq_len->line, "seq_len",
           "a stream's length is prefill + steps x step_rows: give those, not seq_len");
    }
    if (!steps || !prefill) {
      fail(file, (steps ? steps : prefill ? prefill : step_rows)->line, (steps ? steps : prefill ? prefill : step_rows)->key,
           "a stream needs both prefill and steps (step_rows defaults to 1)");
    }
    return;
  }
  require(g, Axis::seq_len, "seq_len", file);
}

bool excluded(const Case& c, const std::vector<Exclude>& excludes) {
  for (const Exclude& e : excludes) {
    bool all_keys_match = true;
    for (const Present& p : present_axes(e.axes)) {
      bool any = false;
      for (const AxisValue& v : p.setting->values) any = any || matches(p.axis, v, c);
      all_keys_match = all_keys_match && any;
    }
    if (all_keys_match) return true;
  }
  return false;
}

// validate() names the parameter; the grid error points at the key that set it.
[[noreturn]] void fail_invalid(const SubGrid& g, const std::string& message, const std::string& file) {
  // The first axis named that this sub-grid sets: "invalid sizes batch = 1, ...,
  // seq_len = ..." points at seq_len when the grid never set batch.
  for (Axis axis : axes_named_in(message)) {
    if (const auto& s = g.axes[static_cast<std::size_t>(axis)]) fail(file, s->line, s->key, message);
  }
  fail(file, g.line, "", message);
}

// Advances an odometer over the axes, last axis fastest; false once it wraps.
bool next(std::vector<std::size_t>& index, const std::vector<Present>& axes) {
  for (std::size_t k = axes.size(); k-- > 0;) {
    if (++index[k] < axes[k].setting->values.size()) return true;
    index[k] = 0;
  }
  return false;
}

struct Collector {
  const std::vector<std::uint64_t>& seeds;
  std::vector<GridCase> cases;
  std::unordered_set<std::string> seen;        // canonical_params of kept cases
  std::map<std::string, std::string> id_owner;  // id -> canonical_params

  void add(const Case& c, const std::string& file) {
    std::string params = canonical_params(c);
    if (!seen.insert(params).second) return;  // a duplicate: the first one stays
    for (std::uint64_t seed : seeds) {
      std::string id = fmt::format("{}-s{}", case_id(c), seed);
      if (auto [it, fresh] = id_owner.emplace(id, params); !fresh) {
        fail(file, 0, "", fmt::format("two different cases get the id '{}' ({} and {})", id,
                                      it->second, params));
      }
      cases.push_back(GridCase{std::move(id), c, seed});
    }
  }
};

// Every case of a grid is meant to be run: a product this large is a mistake in the
// file, and would otherwise make loading it hang.
constexpr std::size_t kMaxCombinations = 1'000'000;

std::size_t combinations_of(const SubGrid& g, const std::string& file) {
  std::size_t combinations = 1;
  for (const Present& p : present_axes(g.axes))
    combinations = std::min(combinations * p.setting->values.size(), kMaxCombinations + 1);
  if (combinations > kMaxCombinations) {
    fail(file, g.line, "", fmt::format("the axes multiply out to more than {} combinations",
                                       kMaxCombinations));
  }
  return combinations;
}

// The limit holds for the whole grid: every sub-grid times every seed, counted before
// excludes and before any case is made, so loading never walks further than it.
void check_case_count(const std::vector<SubGrid>& grids, std::size_t seeds, const std::string& file) {
  std::size_t planned = 0;
  for (const SubGrid& g : grids) {
    planned = std::min(planned + combinations_of(g, file) * seeds, kMaxGridCases + 1);
    if (planned > kMaxGridCases) {
      fail(file, g.line, "", fmt::format("the grid expands to more than {} cases ({} [[grid]] tables x {} seeds); "
                                         "split it into several grids", kMaxGridCases, grids.size(), seeds));
    }
  }
}

void expand_one(const SubGrid& g, const std::vector<Exclude>& excludes, Collector& out,
                const std::string& file) {
  require(g, Axis::head_dim, "head_dim", file);
  require_length(g, file);
  std::vector<Present> axes = present_axes(g.axes);
  std::vector<std::size_t> index(axes.size(), 0);
  do {
    Case c;
    for (std::size_t k = 0; k < axes.size(); ++k) {
      try {
        apply(axes[k].axis, axes[k].setting->values[index[k]], c);
      } catch (const InvalidParameter& e) {
        fail(file, axes[k].setting->line, axes[k].setting->key, e.what());
      }
    }
    if (excluded(c, excludes)) continue;
    try {
      validate(c);
    } catch (const InvalidParameter& e) {
      fail_invalid(g, e.what(), file);
    }
    out.add(c, file);
  } while (next(index, axes));
}

}  // namespace

std::vector<GridCase> expand(const std::vector<SubGrid>& grids, const std::vector<Exclude>& excludes,
                             const std::vector<std::uint64_t>& seeds, const std::string& file) {
  check_case_count(grids, seeds.size(), file);
  Collector out{seeds, {}, {}, {}};
  for (const SubGrid& g : grids) expand_one(g, excludes, out, file);
  if (out.cases.empty()) fail(file, 0, "", "no cases: the excludes drop every case of the grid");
  return std::move(out.cases);
}

std::string canonical_params(const Case& c) {
  // The frame is written only when given, so grids without it keep their fingerprints.
  return fmt::format(
      "D={} R={} base={} base_rescale={} interpolation={} xpos={} scale_base={} layout={} "
      "N={} M={} center={} batch={} heads={}{}{}{}{}",
      c.head_dim, c.rotary(), c.base, c.base_rescale, c.interpolation, c.xpos, c.scale_base,
      layout_name(c.layout), c.seq_len, c.mem_len, c.centre(), c.batch, c.heads,
      c.first_position ? fmt::format(" first={}", *c.first_position) : "",
      c.stream ? fmt::format(" stream={}+{}", c.stream->prefill, c.stream->step_rows) : "",
      c.positions ? fmt::format(" positions={:08x}", position_digest(*c.positions)) : "",
      c.packed ? fmt::format(" packed={} rule={}", packed_text(*c.packed), centre_rule_name(c.centre_rule)) : "");
}

}  // namespace xposcheck::grid_detail
