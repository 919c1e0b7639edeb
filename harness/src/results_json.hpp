#pragma once
// JSON forms of records and run metadata (docs/results-schema.md).
#include <nlohmann/json.hpp>

#include "xposcheck/harness/results.hpp"

namespace xposcheck {

nlohmann::json record_to_json(const Record& r);
Record record_from_json(const nlohmann::json& j);
nlohmann::json run_to_json(const RunInfo& run);
RunInfo run_from_json(const nlohmann::json& j);
nlohmann::json spec_to_json(const ToleranceSpec& s);
ToleranceSpec spec_from_json(const nlohmann::json& j);

}  // namespace xposcheck
