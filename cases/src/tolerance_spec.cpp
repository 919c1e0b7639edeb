// Layering of tolerance overrides: harness defaults, then the grid file, then the
// command line, each layer replacing only the fields it sets.
#include "xposcheck/cases/tolerance_spec.hpp"

namespace xposcheck {

namespace {
template <class T>
void take(std::optional<T>& field, const std::optional<T>& over) {
  if (over) field = over;
}
}  // namespace

void ToleranceSpec::merge(const ToleranceSpec& over) {
  take(rule, over.rule);
  take(base_ulps, over.base_ulps);
  take(angle_factor, over.angle_factor);
  take(scale_factor, over.scale_factor);
  take(logits_factor, over.logits_factor);
  take(logits_bias, over.logits_bias);
  take(relative_k, over.relative_k);
  take(relative_floor_ulps, over.relative_floor_ulps);
}

ToleranceSpec ToleranceOverrides::for_dtype(DType t) const {
  ToleranceSpec spec = all;
  if (auto it = per_dtype.find(t); it != per_dtype.end()) spec.merge(it->second);
  return spec;
}

void ToleranceOverrides::merge(const ToleranceOverrides& over) {
  // A later layer wins for every dtype: its "all" fields also replace the same fields
  // of earlier per-dtype refinements, or a command-line --base-ulps would silently lose
  // to a grid file's [tolerance.bf16] base_ulps.
  all.merge(over.all);
  for (auto& [dtype, spec] : per_dtype) spec.merge(over.all);
  for (const auto& [dtype, spec] : over.per_dtype) per_dtype[dtype].merge(spec);
}

std::string_view rule_name(ToleranceRule r) {
  switch (r) {
    case ToleranceRule::position_aware: return "position-aware";
    case ToleranceRule::relative: return "relative";
  }
  return "?";
}

std::optional<ToleranceRule> parse_rule(std::string_view name) {
  if (name == "position-aware") return ToleranceRule::position_aware;
  if (name == "relative") return ToleranceRule::relative;
  return std::nullopt;
}

}  // namespace xposcheck
