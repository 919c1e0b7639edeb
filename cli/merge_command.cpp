// xposcheck merge: the results of the shards of one sweep, as one results file
// (docs/sharding.md).
#include <filesystem>
#include <fmt/format.h>
#include <memory>

#include "commands.hpp"
#include "file_flags.hpp"
#include "terminal_print.hpp"
#include "xposcheck/cases/grid.hpp"
#include "xposcheck/harness/merge.hpp"

namespace xposcheck::cli {
namespace {

struct MergeOptions {
  std::vector<std::string> inputs;
  std::string out;
  std::string grid;
};

// The grid's case order for the canonical record order: --grid, else the grid file the
// run names when it is still there and unchanged, else none (records by case id).
std::vector<std::string> case_order(const MergeOptions& o, const RunInfo& run) {
  const bool given = !o.grid.empty();
  const std::string file = given ? o.grid : run.grid_source;
  if (file.empty() || !std::filesystem::exists(file)) return {};
  const Grid grid = load_grid(file);
  if (grid.fingerprint != run.grid_fingerprint) {
    if (given) {
      throw CLI::ValidationError("--grid", fmt::format("{} (fingerprint {}) is not the grid of the inputs ({})",
                                                       file, grid.fingerprint, run.grid_fingerprint));
    }
    return {};
  }
  std::vector<std::string> order;
  for (const GridCase& gc : grid.cases) order.push_back(gc.id);
  return order;
}

int run_merge(const MergeOptions& o) {
  std::vector<FileFlag> files = {{"--grid", o.grid}, {"--out", o.out, true}};
  for (const std::string& file : o.inputs) files.push_back({"inputs", file});
  check_files_distinct(files);
  std::vector<MergeInput> inputs;
  for (const std::string& file : o.inputs) inputs.push_back({file, read_results(file)});
  const std::vector<std::string> order = case_order(o, inputs.front().results.run);
  const Results merged = merge_results(inputs, order);
  write_results(o.out, merged);
  print_text("merged {} files: {} records -> {}{}\n", inputs.size(), merged.records.size(), o.out,
             order.empty() ? " (grid file not found: records ordered by case id)" : "");
  if (!merged.run.shard.empty()) {
    print_text("note: the inputs cover shards {} only; merge the rest before saving a baseline\n", merged.run.shard);
  }
  return kExitOk;
}

}  // namespace

void setup_merge(CLI::App& app, ExitStatus& status) {
  auto o = std::make_shared<MergeOptions>();
  auto* sub = app.add_subcommand("merge", "Combine the results of the shards of one sweep (docs/sharding.md)");
  sub->add_option("inputs", o->inputs, "Results files of the shards")->required()->check(CLI::ExistingFile);
  sub->add_option("-o,--out", o->out, "Merged results file")->required();
  sub->add_option("--grid", o->grid, "The grid file, for the grid's record order (default: the one the runs name)")
      ->check(CLI::ExistingFile);
  sub->callback([o, &status] { status.code = run_merge(*o); });
}

}  // namespace xposcheck::cli
