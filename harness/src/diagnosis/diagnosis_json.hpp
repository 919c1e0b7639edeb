#pragma once
// JSON form of a record's diagnosis (docs/diagnosis.md): one object, compact numbers.
#include <nlohmann/json.hpp>

#include "xposcheck/harness/diagnosis.hpp"

namespace xposcheck {

nlohmann::json diagnosis_to_json(const Diagnosis& d);
// Throws nlohmann::json::exception on a malformed object.
Diagnosis diagnosis_from_json(const nlohmann::json& j);

}  // namespace xposcheck
