#pragma once
// Each subcommand lives in its own file: an options struct, setup_x() registering it
// on the app, run_x() doing the work and returning the exit status.
#include <CLI/CLI.hpp>

namespace xposcheck::cli {

// Exit statuses shared by every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitGateFailed = 1;
inline constexpr int kExitUsage = 2;

// Where a subcommand's callback leaves its exit status for main().
struct ExitStatus {
  int code = kExitOk;
};

void setup_golden(CLI::App& app, ExitStatus& status);
void setup_candidates(CLI::App& app, ExitStatus& status);
void setup_sweep(CLI::App& app, ExitStatus& status);
void setup_explain(CLI::App& app, ExitStatus& status);
void setup_report(CLI::App& app, ExitStatus& status);
void setup_baseline(CLI::App& app, ExitStatus& status);
void setup_merge(CLI::App& app, ExitStatus& status);

}  // namespace xposcheck::cli
