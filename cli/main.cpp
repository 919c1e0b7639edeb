#include <cstdio>
#include <exception>
#include <sstream>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "xposcheck/harness/terminal_text.hpp"
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
    // Messages can quote file contents: escaped for the terminal like every printer.
    std::ostringstream out, err;
    const int code = app.exit(e, out, err);
    std::fputs(xposcheck::terminal_text(out.str()).c_str(), stdout);
    std::fputs(xposcheck::terminal_text(err.str()).c_str(), stderr);
    return code == 0 ? 0 : cli::kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "xposcheck: error: %s\n", xposcheck::terminal_text(e.what()).c_str());
    return cli::kExitUsage;
  }
  return status.code;
}
