#pragma once
// Shared by the external-candidate tests: small grids, sweeps into a temporary
// results file, and the command lines of the test candidates.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "xposcheck/cases/grid.hpp"
#include "xposcheck/harness/process.hpp"
#include "xposcheck/harness/results.hpp"
#include "xposcheck/harness/subprocess_candidate.hpp"
#include "xposcheck/harness/sweep.hpp"
#include "temp_dir.hpp"
#include "xposcheck/harness/plugin_candidate.hpp"

namespace xposcheck::test {

namespace fs = std::filesystem;

inline const std::string kPython = "/usr/bin/python3";

// A scratch directory named after what the test exercises.
struct ScratchDir : testing::TempDir {
  explicit ScratchDir(const std::string& label) : TempDir("xposcheck-ext-" + label) {}
};

// Whether Debian's interpreter has PyTorch (tests of torch candidates skip without it).
inline bool torch_available() {
  ProcessOptions o;
  o.argv = {kPython, "-c", "import torch"};
  o.time_limit_s = 120;
  return run_process(o).succeeded();
}

// A grid of the given axes (TOML text of one [[grid]] table) in the given dtypes.
inline Grid small_grid(const std::string& axes, const std::string& dtypes = "[\"fp32\"]") {
  return parse_grid("name = \"ext\"\ndtypes = " + dtypes + "\n[[grid]]\n" + axes, "ext-test");
}

// `/usr/bin/python3 python/testing/<script>` with the helper on PYTHONPATH.
inline std::string testing_command(const std::string& script, const std::string& env = "") {
  const std::string src = XPOSCHECK_SOURCE_DIR;
  return env + (env.empty() ? "" : " ") + "PYTHONPATH='" + src + "/python' " + kPython + " '" +
         src + "/python/testing/" + script + "'";
}

inline SubprocessOptions options_for(const std::string& name, const std::string& command,
                                     std::size_t batch = 8) {
  SubprocessOptions o;
  o.name = name;
  o.argv = shell_command(command);
  o.batch_size = batch;
  o.case_timeout_s = 30;
  return o;
}

// Runs the candidates over the grid; returns the records in canonical order.
inline std::vector<Record> sweep_records(const Grid& grid,
                                         std::vector<std::unique_ptr<Candidate>>& candidates,
                                         SweepOptions options = {}) {
  ScratchDir dir("results");
  std::vector<std::string> names, order;
  for (const auto& c : candidates) names.push_back(c->name());
  for (const GridCase& gc : grid.cases) order.push_back(gc.id);
  RunInfo run;
  run.candidates = names;
  ResultsStore store(dir.path / "results.json", run, order);
  options.jobs = 1;
  run_sweep(grid, candidates, options, store);
  return store.finish().records;
}

// Runs one candidate, which the caller keeps (to look at its statistics).
template <class C>
std::vector<Record> sweep_one(const Grid& grid, std::unique_ptr<C>& candidate) {
  std::vector<std::unique_ptr<Candidate>> list;
  list.push_back(std::move(candidate));
  const std::vector<Record> records = sweep_records(grid, list);
  candidate.reset(static_cast<C*>(list.front().release()));
  return records;
}

template <class C>
std::vector<Record> sweep_one(const Grid& grid, std::unique_ptr<C>&& candidate) {
  return sweep_one(grid, candidate);
}

// An example plugin built with the project (examples/CMakeLists.txt).
inline fs::path example_plugin(const std::string& name) {
  return fs::path(XPOSCHECK_BINARY_DIR) / "examples" / ("libxposcheck_example_" + name + ".so");
}

// That plugin as a candidate, 16 cases per batch.
inline std::unique_ptr<SubprocessCandidate> example_plugin_candidate(const std::string& name) {
  SubprocessOptions o;
  o.batch_size = 16;
  return make_plugin_candidate(example_plugin(name), o);
}

// Sets $XPOSCHECK_TEST_HOSTILE (examples/hostile_plugin.c) for the plugin runners
// started in this scope.
struct Hostile {
  explicit Hostile(const char* mode) { ::setenv("XPOSCHECK_TEST_HOSTILE", mode, 1); }
  ~Hostile() { ::unsetenv("XPOSCHECK_TEST_HOSTILE"); }
  Hostile(const Hostile&) = delete;
  Hostile& operator=(const Hostile&) = delete;
};

// True when the process is gone (or a zombie nobody reaps, which runs no code).
inline bool process_gone(int pid) {
  std::error_code ec;
  const fs::path stat = "/proc/" + std::to_string(pid) + "/stat";
  if (!fs::exists(stat, ec)) return true;
  std::FILE* f = std::fopen(stat.c_str(), "r");
  if (!f) return true;
  char buffer[512] = {};
  const std::size_t n = std::fread(buffer, 1, sizeof buffer - 1, f);
  std::fclose(f);
  const std::string text(buffer, n);
  const auto paren = text.rfind(')');
  return paren == std::string::npos || paren + 2 >= text.size() || text[paren + 2] == 'Z';
}

}  // namespace xposcheck::test
