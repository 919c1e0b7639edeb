// The C ABI's optional backward entry point, through the plugin runner on a work
// directory written here as the harness writes a backward case: a plugin exporting
// xposcheck_run_backward returns the golden gradients, one without it says it has no
// backward pass, and describe reports which is which.
#include <cmath>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "../../harness/src/external/protocol.hpp"  // private to the harness
#include "external_test_support.hpp"
#include "shell_run.hpp"
#include "xposcheck/harness/plugin_candidate.hpp"
#include "xposcheck/reference/atomic_file.hpp"
#include "xposcheck/reference/case_json.hpp"
#include "xposcheck/reference/golden.hpp"
#include "xposcheck/reference/inputs.hpp"
#include "xposcheck/reference/npy.hpp"

using namespace xposcheck;
using namespace xposcheck::test;
using Catch::Matchers::Contains;

namespace {

Case backward_case() {
  Case c;
  c.head_dim = 16;
  c.rotary_dim = 12;  // four pass-through features
  c.seq_len = 7;
  c.mem_len = 3;
  c.layout = Layout::interleaved;
  return c;
}

// One fp32 backward case as the harness writes it; returns the manifest's entry.
nlohmann::json write_backward_case(const fs::path& dir, const Case& c) {
  namespace ext = xposcheck::external;
  const Inputs in = generate_inputs(c, 7, DType::fp32);
  const Upstream up = generate_upstream(c, 7, DType::fp32);
  const auto file = [&](const char* suffix) { return (dir / (std::string("c000") + suffix)).string(); };
  write_npy(file(ext::kQInSuffix), in.q, NpyStorage::f4);
  write_npy(file(ext::kKInSuffix), in.k, NpyStorage::f4);
  write_npy(file(ext::kGqSuffix), up.g_q, NpyStorage::f4);
  write_npy(file(ext::kGkSuffix), up.g_k, NpyStorage::f4);
  const nlohmann::json entry = {
      {"id", "c000"}, {"case_id", "backward-test"}, {"dtype", "fp32"},
      {ext::kPassKey, pass_name(Pass::backward)},
      {"params", case_to_json(c, CaseForm::resolved)},
      {"inputs", {{"q", file(ext::kQInSuffix)}, {"k", file(ext::kKInSuffix)},
                  {"g_q", file(ext::kGqSuffix)}, {"g_k", file(ext::kGkSuffix)}}},
      {"outputs", {{"q", file(ext::kDqSuffix)}, {"k", file(ext::kDkSuffix)}}},
      {"error", file(ext::kErrorSuffix)}, {"result", file(ext::kResultSuffix)},
      {"shapes", {{"q_in", c.q_shape()}, {"k_in", c.k_shape()},
                  {"q_out", c.q_shape()}, {"k_out", c.k_shape()}}}};
  const nlohmann::json manifest = {{"protocol", ext::kProtocolName},
                                   {"version", ext::kProtocolVersion},
                                   {"cases", {entry}}};
  write_atomically(dir / ext::kManifestFile, manifest.dump());
  return entry;
}

void run_runner(const std::string& library, const fs::path& dir) {
  ProcessOptions o;
  o.argv = {find_plugin_runner().string(), example_plugin(library).string(), dir.string()};
  o.time_limit_s = 60;
  const ProcessResult r = run_process(o);
  INFO(r.err.text());
  REQUIRE(r.exit_code == 0);
}

double max_error(const Tensor& got, const Tensor& want) {
  REQUIRE(got.shape == want.shape);
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got.data[i] - want.data[i]));
  return worst;
}

}  // namespace

TEST_CASE("a plugin's xposcheck_run_backward returns the golden gradients", "[external][plugin]") {
  ScratchDir dir("plugin-backward");
  const Case c = backward_case();
  const nlohmann::json entry = write_backward_case(dir.path, c);
  run_runner("rope", dir.path);
  REQUIRE_FALSE(fs::exists(entry.at("error").get<std::string>()));
  const Tensor dq = read_npy(entry.at("outputs").at("q").get<std::string>()).tensor;
  const Tensor dk = read_npy(entry.at("outputs").at("k").get<std::string>()).tensor;
  const Upstream up = generate_upstream(c, 7, DType::fp32);
  const GoldenGradients golden = golden_gradients_fast(c, up.g_q, up.g_k);
  // fp32 tables and arithmetic on values of about 1: a few fp32 ulps, while a wrong
  // rotation direction would be off by about 1.
  CHECK(max_error(dq, golden.dq) < 1e-5);
  CHECK(max_error(dk, golden.dk) < 1e-5);
  CHECK(dq.data[12] == up.g_q.data[12]);  // a pass-through feature, bit for bit
}

TEST_CASE("a plugin without xposcheck_run_backward fails a backward case saying so",
          "[external][plugin]") {
  ScratchDir dir("plugin-no-backward");
  const nlohmann::json entry = write_backward_case(dir.path, backward_case());
  run_runner("segfault", dir.path);
  const std::string error = testing::slurp(entry.at("error").get<std::string>());
  CHECK_THAT(error, Contains("has no backward pass") && Contains("xposcheck_run_backward"));
}

TEST_CASE("describe says whether a plugin has a backward pass", "[external][plugin]") {
  CHECK(describe_plugin(example_plugin("rope")).backward);
  CHECK_FALSE(describe_plugin(example_plugin("segfault")).backward);
}
