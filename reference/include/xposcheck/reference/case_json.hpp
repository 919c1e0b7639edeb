#pragma once
// A case's parameters as JSON: the one spelling shared by the results file, the
// protocol's manifest and the golden command's case.json. Adding a parameter to Case
// means adding it here, and every file format follows.
#include <nlohmann/json.hpp>

#include "xposcheck/reference/case.hpp"

namespace xposcheck {

// Every form writes rotary_dim and center resolved (keys as in SPEC section 1); they
// differ in the parameters added since, whose defaults follow from the others.
enum class CaseForm {
  stored,    // results, golden's case.json: such a parameter only when the case sets it,
             // so that files of cases without it stay as they were
  resolved,  // the protocol's manifest: every default resolved, so that a candidate
             // never re-derives one
};

nlohmann::json case_to_json(const Case& c, CaseForm form);

// The stored form, for nlohmann's conversions (json(c), j.get<Case>()).
void to_json(nlohmann::json& j, const Case& c);
// The inverse of either form; throws nlohmann::json::exception for a missing or
// mistyped key and std::invalid_argument for an unknown layout. Not validated.
void from_json(const nlohmann::json& j, Case& c);

}  // namespace xposcheck
