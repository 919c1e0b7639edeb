// xposcheck candidates: lists the built-in candidates with a line each.
#include <fmt/format.h>

#include "commands.hpp"
#include "xposcheck/harness/builtin_candidates.hpp"

namespace xposcheck::cli {

int run_candidates() {
  for (const CandidateInfo& info : builtin_candidates()) {
    fmt::print("{:<22} {:<8} {}\n", info.name, info.correct ? "correct" : "buggy", info.description);
  }
  return kExitOk;
}

void setup_candidates(CLI::App& app, ExitStatus& status) {
  auto* sub = app.add_subcommand("candidates", "List the built-in candidates");
  sub->callback([&status] { status.code = run_candidates(); });
}

}  // namespace xposcheck::cli
