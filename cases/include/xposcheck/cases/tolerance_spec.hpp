#pragma once
// The knobs of the tolerance model (docs/tolerances.md), as a grid file or the
// command line may override them. Unset fields keep the harness defaults.
#include <map>
#include <optional>
#include <string>

#include "xposcheck/reference/dtype.hpp"

namespace xposcheck {

enum class ToleranceRule {
  position_aware,  // error <= base + angle and scale terms that grow with |phi| and |ln sigma|
  relative,        // error <= k * error of the fp32-angles candidate + floor (FlashAttention style)
};

struct ToleranceSpec {
  std::optional<ToleranceRule> rule;
  std::optional<double> base_ulps;      // allowance independent of position, in dtype ulps
  std::optional<double> angle_factor;   // multiples of |phi| * 2^-24 (an fp32-rounded angle)
  std::optional<double> scale_factor;   // multiples of |p - c| / B * 2^-24 (an fp32 zeta^power)
  std::optional<double> logits_factor;  // logits allowance: factor * (q row + k row allowance)
  // The systematic relative logit error allowed (least squares over every compared
  // logit), in units of the dtype's unit roundoff (docs/tolerances.md).
  std::optional<double> logits_bias;
  std::optional<double> relative_k;     // relative rule: k
  std::optional<double> relative_floor_ulps;  // relative rule: absolute floor in ulps

  // Fields set in `over` replace those here.
  void merge(const ToleranceSpec& over);
};

// A spec for every dtype ("all") and per-dtype refinements applied on top.
struct ToleranceOverrides {
  ToleranceSpec all;
  std::map<DType, ToleranceSpec> per_dtype;

  ToleranceSpec for_dtype(DType t) const;  // all, then the dtype's own fields
  void merge(const ToleranceOverrides& over);
};

std::string_view rule_name(ToleranceRule r);
std::optional<ToleranceRule> parse_rule(std::string_view name);

}  // namespace xposcheck
