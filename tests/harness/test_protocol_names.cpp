// The protocol's names are spelled once per language: here the C++ spelling
// (protocol.hpp) is checked against the Python helper's (xposcheck_candidate/names.py).
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "../../harness/src/external/protocol.hpp"  // private to the harness
#include "external_test_support.hpp"
#include "shell_run.hpp"

namespace xposcheck::external {
namespace {

nlohmann::json python_names() {
  test::ScratchDir dir("names");
  const std::string src = XPOSCHECK_SOURCE_DIR;
  const auto r = testing::run_shell(
      dir.path, "PYTHONPATH='" + src + "/python' " + test::kPython +
                    " -c 'import json; from xposcheck_candidate import names as n; "
                    "print(json.dumps({k: getattr(n, k) for k in dir(n) if k.isupper()}))'");
  INFO(r.err);
  REQUIRE(r.status == 0);
  return nlohmann::json::parse(r.out);
}

TEST_CASE("the harness and the Python helper spell the protocol's names alike", "[protocol]") {
  const nlohmann::json py = python_names();
  CHECK(py.at("PROTOCOL") == kProtocolName);
  CHECK(py.at("PROTOCOL_VERSION") == kProtocolVersion);
  CHECK(py.at("MANIFEST_FILE") == kManifestFile);
  CHECK(py.at("CAPABILITIES_FILE") == kCapabilitiesFile);
  CHECK(py.at("DONE_FILE") == kDoneFile);
  CHECK(py.at("NEXT_FILE") == kNextFile);
  CHECK(py.at("SERVE_ENV") == kServeEnv);
  CHECK(py.at("WAIT_FOR_MANIFEST_ENV") == kWaitForManifestEnv);
  CHECK(py.at("HARNESS_PID_ENV") == kHarnessPidEnv);
  const nlohmann::json suffixes = {{"q_in", kQInSuffix},   {"k_in", kKInSuffix},
                                   {"q_out", kQOutSuffix}, {"k_out", kKOutSuffix},
                                   {"error", kErrorSuffix}, {"result", kResultSuffix},
                                   {"g_q", kGqSuffix},     {"g_k", kGkSuffix},
                                   {"dq", kDqSuffix},      {"dk", kDkSuffix}};
  CHECK(py.at("CASE_FILE_SUFFIXES") == suffixes);
  CHECK(py.at("PASS_KEY") == kPassKey);
  CHECK(py.at("FORWARD_PASS") == pass_name(Pass::forward));
  CHECK(py.at("BACKWARD_PASS") == pass_name(Pass::backward));
  CHECK(py.at("BACKWARD_CAPABILITY") == kBackwardCapability);
  CHECK(py.size() == 14);  // a name added on one side only shows here
}

}  // namespace
}  // namespace xposcheck::external
