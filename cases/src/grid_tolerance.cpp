// The [tolerance] table of a grid file: fields for every dtype, and [tolerance.<dtype>]
// refinements.
#include <cmath>

#include <fmt/format.h>

#include "grid_detail.hpp"

namespace xposcheck::grid_detail {

namespace {

struct Field {
  std::string_view key;
  std::optional<double> ToleranceSpec::*member;
};

constexpr Field kFields[] = {
    {"base_ulps", &ToleranceSpec::base_ulps},
    {"angle_factor", &ToleranceSpec::angle_factor},
    {"scale_factor", &ToleranceSpec::scale_factor},
    {"logits_factor", &ToleranceSpec::logits_factor},
    {"logits_bias", &ToleranceSpec::logits_bias},
    {"relative_k", &ToleranceSpec::relative_k},
    {"relative_floor_ulps", &ToleranceSpec::relative_floor_ulps},
};

constexpr std::string_view kSpecKeys[] = {
    "rule", "base_ulps", "angle_factor", "scale_factor", "logits_factor", "logits_bias", "relative_k",
    "relative_floor_ulps"};
constexpr std::string_view kTopKeys[] = {
    "rule", "base_ulps", "angle_factor", "scale_factor", "logits_factor", "logits_bias",
    "relative_k", "relative_floor_ulps", "fp32", "bf16", "fp16"};

void read_rule(const toml::key& key, const toml::node& n, ToleranceSpec& spec,
               const std::string& file) {
  auto text = n.value_exact<std::string>();
  auto rule = text ? parse_rule(*text) : std::nullopt;
  if (!rule) {
    fail(file, line_of(n), key.str(),
         fmt::format("expected \"position-aware\" or \"relative\", got {}", describe(n)));
  }
  spec.rule = rule;
}

void read_number(const Field& field, const toml::key& key, const toml::node& n,
                 ToleranceSpec& spec, const std::string& file) {
  auto x = n.value<double>();
  bool number = n.is_integer() || n.is_floating_point();
  if (!number || !x) fail(file, line_of(n), key.str(), fmt::format("expected a number, got {}", describe(n)));
  if (!std::isfinite(*x) || *x < 0) {
    fail(file, line_of(n), key.str(), fmt::format("invalid value {}: must be finite and >= 0", *x));
  }
  spec.*field.member = *x;
}

// Reads one spec field; false when `key` is not a spec field.
bool read_field(const toml::key& key, const toml::node& n, ToleranceSpec& spec,
                const std::string& file) {
  if (key.str() == "rule") {
    read_rule(key, n, spec, file);
    return true;
  }
  for (const Field& field : kFields) {
    if (key.str() == field.key) {
      read_number(field, key, n, spec, file);
      return true;
    }
  }
  return false;
}

ToleranceSpec read_dtype_spec(const toml::key& name, const toml::node& n, const std::string& file) {
  const toml::table* t = n.as_table();
  if (!t) fail(file, line_of(name), name.str(), fmt::format("expected a table, got {}", describe(n)));
  ToleranceSpec spec;
  for (auto [key, value] : in_file_order(*t)) {
    if (!read_field(*key, *value, spec, file))
      fail(file, line_of(*key), key->str(), unknown_key_problem(key->str(), kSpecKeys));
  }
  return spec;
}

}  // namespace

ToleranceOverrides read_tolerance(const toml::table& t, const std::string& file) {
  ToleranceOverrides o;
  for (auto [key_ptr, value_ptr] : in_file_order(t)) {
    const toml::key& key = *key_ptr;
    const toml::node& value = *value_ptr;
    if (read_field(key, value, o.all, file)) continue;
    auto dtype = parse_dtype(key.str());
    if (!dtype) fail(file, line_of(key), key.str(), unknown_key_problem(key.str(), kTopKeys));
    if (o.per_dtype.count(*dtype)) {
      fail(file, line_of(key), key.str(),
           fmt::format("a second table for dtype {}", dtype_name(*dtype)));
    }
    o.per_dtype[*dtype] = read_dtype_spec(key, value, file);
  }
  return o;
}

namespace {
void append_spec(std::string& out, std::string_view scope, const ToleranceSpec& s) {
  if (s.rule) out += fmt::format("{}.rule={}\n", scope, rule_name(*s.rule));
  for (const Field& field : kFields) {
    // fmt prints the shortest text that reads back to the same double: stable and exact.
    if (const auto& x = s.*field.member) out += fmt::format("{}.{}={}\n", scope, field.key, *x);
  }
}
}  // namespace

std::string canonical_text(const ToleranceOverrides& o) {
  std::string out;
  append_spec(out, "all", o.all);
  for (const auto& [dtype, spec] : o.per_dtype) append_spec(out, dtype_name(dtype), spec);
  return out;
}

}  // namespace xposcheck::grid_detail
