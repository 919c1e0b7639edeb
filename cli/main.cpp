#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "xposcheck/version.hpp"

int main(int argc, char** argv) {
  namespace cli = xposcheck::cli;
  CLI::App app{"xposcheck: numerical verification of rotary XPOS with memory"};
  app.set_version_flag("--version", xposcheck::kVersion);
  app.require_subcommand(1);
  cli::ExitStatus status;
  cli::setup_golden(app, status);
  cli::setup_candidates(app, status);
  cli::setup_sweep(app, status);
  cli::setup_explain(app, status);
  cli::setup_report(app, status);
  cli::setup_baseline(app, status);
  cli::setup_merge(app, status);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : cli::kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "xposcheck: error: %s\n", e.what());
    return cli::kExitUsage;
  }
  return status.code;
}
