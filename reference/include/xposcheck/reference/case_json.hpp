#pragma once
// A case's parameters as JSON: the one spelling shared by the results file, the
// protocol's manifest and the golden command's case.json. Adding a parameter to Case
// means adding it here, and every file format follows.
#include <nlohmann/json.hpp>

#include "xposcheck/reference/case.hpp"

namespace xposcheck {

// Every parameter, defaults resolved (rotary_dim, center), so that a reader never
// re-derives one; keys as in SPEC section 1.
void to_json(nlohmann::json& j, const Case& c);
// The inverse; throws nlohmann::json::exception for a missing or mistyped key and
// std::invalid_argument for an unknown layout. The result is not validated.
void from_json(const nlohmann::json& j, Case& c);

}  // namespace xposcheck
