#pragma once
// Helpers of the baseline, shard and envelope tests: whole sweeps into Results, and
// records compared apart from their timings.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <unistd.h>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness_fixtures.hpp"
#include "shell_run.hpp"
#include "xposcheck/harness/results.hpp"

namespace xposcheck::testing {

inline std::filesystem::path scratch_file(const std::string& name) {
  const auto p = std::filesystem::temp_directory_path() /
                 ("xposcheck-drift-" + std::to_string(::getpid()) + "-" + name);
  std::filesystem::remove(p);
  std::filesystem::remove(p.string() + ".journal");
  return p;
}

inline std::vector<std::string> case_order_of(const Grid& g) {
  std::vector<std::string> order;
  for (const GridCase& gc : g.cases) order.push_back(gc.id);
  return order;
}

inline RunInfo run_info_for(const Grid& grid, const std::vector<std::string>& names) {
  RunInfo run;
  run.tool_version = "test";
  run.grid_name = grid.name;
  run.grid_fingerprint = grid.fingerprint;
  run.candidates = names;
  for (DType t : grid.dtypes) run.dtypes.emplace_back(dtype_name(t));
  return run;
}

// Runs the named built-in candidates over the grid, as `xposcheck sweep` does.
inline Results sweep_results(const Grid& grid, const std::vector<std::string>& names, const std::string& tag,
                             SweepOptions options = {}) {
  std::vector<std::unique_ptr<Candidate>> candidates;
  for (const std::string& n : names) candidates.push_back(make_builtin(n));
  options.jobs = 2;
  RunInfo run = run_info_for(grid, names);
  if (options.shard) run.shard = shard_name(*options.shard);
  const auto file = scratch_file(tag + ".json");
  ResultsStore store(file, run, case_order_of(grid));
  run_sweep(grid, candidates, options, store);
  Results results = store.finish();
  std::filesystem::remove(file);
  return results;
}

// Drops durations: the "timing" object and any "seconds" or "*_s" key.
inline void drop_durations(nlohmann::json& j) {
  if (!j.is_object()) return;
  for (auto it = j.begin(); it != j.end();) {
    const std::string& k = it.key();
    if (k == "timing" || k == "seconds" || (k.size() > 2 && k.ends_with("_s"))) {
      it = j.erase(it);
    } else {
      drop_durations(it.value());
      ++it;
    }
  }
}

// The records as their results file stores them, without durations.
inline nlohmann::json records_json(const Results& results) {
  const auto file = scratch_file("records.json");
  write_results(file, results);
  nlohmann::json records = nlohmann::json::parse(slurp(file)).at("records");
  std::filesystem::remove(file);
  for (nlohmann::json& r : records) drop_durations(r);
  return records;
}

// "" when equal, else the path of the first difference. Numbers agree to 9 significant
// digits: a golden value carries ~1e-31 relative noise from which cached rotary table
// (reference/src/tables.cpp, built from the first position of the case that built it)
// served it, and that noise can reach the last bits of an error statistic.
inline std::string first_difference(const nlohmann::json& a, const nlohmann::json& b, const std::string& path = "") {
  if (a.is_number_float() || b.is_number_float()) {
    if (!a.is_number() || !b.is_number()) return path + ": " + a.dump() + " vs " + b.dump();
    const double x = a.get<double>(), y = b.get<double>();
    const bool close = x == y || std::fabs(x - y) <= 1e-9 * std::max(std::fabs(x), std::fabs(y));
    return close ? "" : path + ": " + a.dump() + " vs " + b.dump();
  }
  if (a.type() != b.type() || a.size() != b.size()) return path + ": " + a.dump().substr(0, 200) + " vs " + b.dump().substr(0, 200);
  if (a.is_array()) {
    for (std::size_t i = 0; i < a.size(); ++i) {
      const std::string d = first_difference(a[i], b[i], path + "[" + std::to_string(i) + "]");
      if (!d.empty()) return d;
    }
    return "";
  }
  if (a.is_object()) {
    for (auto it = a.begin(); it != a.end(); ++it) {
      if (!b.contains(it.key())) return path + "." + it.key() + ": missing";
      const std::string d = first_difference(it.value(), b.at(it.key()), path + "." + it.key());
      if (!d.empty()) return d;
    }
    return "";
  }
  return a == b ? "" : path + ": " + a.dump() + " vs " + b.dump();
}

inline std::string first_difference(const Results& a, const Results& b) {
  return first_difference(records_json(a), records_json(b), "records");
}

}  // namespace xposcheck::testing
