// `xposcheck sweep` with external candidates: the PyTorch candidates under the
// shipped grids (smoke in every dtype; the x-transformers regression grid through
// the generic adapter, with the original bug caught as DIM_MISMATCH), native
// plugins, and every bad flag exiting 2 with a message naming it.
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "../harness/external_test_support.hpp"
#include "xposcheck/harness/process.hpp"

using namespace xposcheck;
using namespace xposcheck::test;
using Catch::Matchers::Contains;

namespace {

const std::string kSource = XPOSCHECK_SOURCE_DIR;

struct Cli {
  int status = -1;
  std::string out, err;
};

// Runs `xposcheck sweep ARGS --out DIR/results.json` from the source directory.
Cli sweep(const ScratchDir& dir, std::vector<std::string> args) {
  ProcessOptions o;
  o.argv = {XPOSCHECK_EXE, "sweep"};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  o.argv.insert(o.argv.end(), {"--out", (dir.path / "results.json").string(), "--quiet"});
  o.working_dir = kSource;
  o.time_limit_s = 300;
  const ProcessResult r = run_process(o);
  return {r.exit_code, r.out.text(), r.err.text()};
}

nlohmann::json results(const ScratchDir& dir) {
  std::ifstream in(dir.path / "results.json");
  return nlohmann::json::parse(in);
}

std::string python(const std::string& script_and_args) {
  return kPython + " " + kSource + "/python/" + script_and_args;
}

fs::path example(const std::string& name) {
  return fs::path(XPOSCHECK_BINARY_DIR) / "examples" / ("libxposcheck_example_" + name + ".so");
}

}  // namespace

TEST_CASE("the PyTorch x-transformers candidate passes the smoke grid in every dtype",
          "[external][torch]") {
  if (!torch_available()) {
    WARN("skipped: " << kPython << " cannot import torch");
    return;
  }
  ScratchDir dir("cli-torch");
  const Cli r = sweep(dir, {"--grid", "cases/smoke.toml", "--dtypes", "fp32,bf16,fp16",
                            "--candidate-cmd", python("candidates/torch_xtransformers.py"),
                            "--candidate-name", "torch", "--batch-size", "90"});
  INFO(r.out << r.err);
  CHECK(r.status == 0);
  CHECK_THAT(r.out, Contains("gate: PASS (0 failing of 90)"));
  CHECK_THAT(r.out, Contains("external: torch: 90 cases in 1 processes") &&
                        Contains("(90 cases timed)"));
  const auto j = results(dir);
  REQUIRE(j.at("records").size() == 90);
  for (const auto& record : j.at("records")) CHECK(record.at("outcome") == "PASS");
}

TEST_CASE("the adapter runs x-transformers-like modules: the original bug is a DIM_MISMATCH",
          "[external][torch]") {
  if (!torch_available()) {
    WARN("skipped: " << kPython << " cannot import torch");
    return;
  }
  ScratchDir dir("cli-adapter");
  const std::string adapter = python("candidates/torch_adapter.py --module ");
  const Cli r = sweep(dir, {"--grid", "cases/regressions/x-transformers-xpos-mems.toml",
                            "--candidate-cmd", adapter + kSource + "/python/testing/xtransformers_buggy.py",
                            "--candidate-name", "buggy",
                            "--candidate-cmd", adapter + kSource + "/python/candidates/torch_xtransformers.py",
                            "--candidate-name", "fixed"});
  INFO(r.out << r.err);
  CHECK(r.status == 1);
  const auto j = results(dir);
  REQUIRE(j.at("records").size() == 36);  // 6 cases x 3 dtypes x 2 candidates
  for (const auto& record : j.at("records")) {
    const long m = record.at("case").at("mem_len");
    INFO(record.at("candidate") << " " << record.at("case_id") << ": " << record.at("message"));
    if (record.at("candidate") == "fixed" || m == 0) {
      CHECK(record.at("outcome") == "PASS");
      continue;
    }
    CHECK(record.at("outcome") == "DIM_MISMATCH");
    const std::string message = record.at("message");
    const std::string relation = record.at("shape").at("relation");
    if (record.at("case").at("seq_len") == 1) {
      // One query row broadcasts against the M + 1 scale rows; the concatenation with
      // the pass-through features then fails.
      CHECK_THAT(message, Contains("Sizes of tensors must match"));
      CHECK_THAT(relation, Contains("= M + N") && Contains("1 = N"));
    } else {
      CHECK_THAT(message, Contains("The size of tensor a (1024) must match the size of tensor b"));
      if (m == 100) CHECK(relation == "1024 = N, 1124 = M + N");
    }
  }
}

TEST_CASE("native plugins and commands run side by side from the command line", "[external]") {
  ScratchDir dir("cli-mixed");
  const Cli r = sweep(dir, {"--grid", "cases/smoke.toml", "--dtypes", "bf16",
                            "--candidate-lib", example("rope").string(),
                            "--candidate-lib", example("segfault").string(),
                            "--candidate-cmd", "PYTHONPATH=" + kSource + "/python " +
                                python("testing/numpy_reference.py"),
                            "--candidate-name", "numpy", "--bf16-inputs", "float32"});
  INFO(r.out << r.err);
  CHECK(r.status == 1);  // the segfaulting plugin fails the gate
  CHECK_THAT(r.out, Contains("external: example-rope: 30 cases in 1 processes"));
  CHECK_THAT(r.out, Contains("external: numpy: 30 cases"));
  std::map<std::string, std::map<std::string, int>> outcomes;
  const auto j = results(dir);
  for (const auto& record : j.at("records"))
    ++outcomes[record.at("candidate").get<std::string>()][record.at("outcome").get<std::string>()];
  CHECK(outcomes["example-rope"]["PASS"] == 30);
  CHECK(outcomes["numpy"]["PASS"] == 30);
  CHECK(outcomes["example-segfault"]["CRASH"] == 4);  // the four N = 7 cases
  CHECK(outcomes["example-segfault"]["PASS"] == 26);
}

TEST_CASE("bad external-candidate flags exit 2 naming the flag", "[external]") {
  ScratchDir dir("cli-flags");
  const std::string grid = "cases/regressions/x-transformers-xpos-mems.toml";
  const std::pair<std::vector<std::string>, std::string> cases[] = {
      {{"--candidate-cmd", "true", "--candidate-name", "a", "--candidate-name", "b"},
       "--candidate-name: 2 names for 1 --candidate-cmd"},
      {{"--candidate-cmd", "true", "--candidate-cmd", "true"}, "two candidates named 'true'"},
      {{"--candidate-lib", "/nonexistent/lib.so"}, "--candidate-lib: File does not exist"},
      {{"--candidate-lib", kSource + "/cases/smoke.toml"}, "smoke.toml: unusable native candidate"},
      {{"--candidate-cmd", "true", "--batch-size", "0"}, "--batch-size: Value 0 not in range"},
      {{"--candidate-cmd", "true", "--case-timeout", "-1"}, "--case-timeout"},
      {{"--candidate-cmd", "true", "--bf16-inputs", "f16"}, "--bf16-inputs: f16 not in {bits,float32}"},
      {{}, "name at least one candidate (--candidate, --candidate-cmd or --candidate-lib)"},
  };
  for (const auto& [flags, message] : cases) {
    std::vector<std::string> args = {"--grid", grid};
    args.insert(args.end(), flags.begin(), flags.end());
    const Cli r = sweep(dir, args);
    INFO(message << "\n" << r.err);
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Contains(message));
  }
}

TEST_CASE("sweep: SIGTERM ends the candidate's processes, removes its work directories and "
          "keeps the finished records", "[external][cli][hostile]") {
  ScratchDir dir("sigterm");
  const fs::path tmp = dir.path / "tmp", pids = dir.path / "pids.txt";
  fs::create_directories(tmp);
  // Batches of one: the first passes, the second (N = 7) hangs with a helper.
  const std::string command = "XPOSCHECK_TEST_PID_FILE='" + pids.string() + "' PYTHONPATH='" + kSource +
                              "/python' " + kPython + " '" + kSource + "/python/testing/hang.py'";
  const std::string script =
      "cd '" + kSource + "' || exit 9; TMPDIR='" + tmp.string() + "' '" + XPOSCHECK_EXE +
      "' sweep --grid cases/smoke.toml --quiet --batch-size 1 --case-timeout 300 --out '" +
      (dir.path / "results.json").string() + "' --candidate-cmd \"" + command +
      "\" --candidate-name hang & x=$!; for i in $(seq 600); do [ -s '" + pids.string() +
      "' ] && break; sleep 0.1; done; kill -TERM $x; wait $x; echo status=$?";
  ProcessOptions o;
  o.argv = {"/bin/sh", "-c", script};
  o.time_limit_s = 120;
  const ProcessResult r = run_process(o);
  INFO(r.out.text() << r.err.text());
  CHECK_THAT(r.out.text(), Contains("status=143"));
  std::ifstream in(pids);
  int candidate_pid = 0, helper_pid = 0;
  REQUIRE(in >> candidate_pid >> helper_pid);
  CHECK(process_gone(candidate_pid));
  CHECK(process_gone(helper_pid));
  CHECK(fs::is_empty(tmp));
  // The first batch's record was journaled before the signal.
  CHECK(fs::exists(dir.path / "results.json.journal"));
}

TEST_CASE("sweep: candidate names with control characters or none at all are refused",
          "[external][cli]") {
  ScratchDir dir("names");
  const std::string cmd = python("testing/numpy_reference.py");
  for (const std::string& name : {std::string(""), std::string("evil\x1b[2J"), std::string("two\nlines")}) {
    const Cli r = sweep(dir, {"--grid", "cases/smoke.toml", "--candidate-cmd", cmd, "--candidate-name", name});
    INFO(r.err);
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Contains("--candidate-name"));
  }
}
