// Native candidates: the C ABI's dtype helpers against the exact rounding, and the
// example plugins (examples/) through the plugin runner: a correct one passes, a
// segfault is a CRASH for its cases only, a wrong output shape and a shape error
// code are DIM_MISMATCH, and unusable libraries are refused with a clear message.
#include <dlfcn.h>

#include <bit>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iterator>

#include <catch2/catch.hpp>

#include "external_test_support.hpp"
#include "xposcheck/candidate.h"
#include "xposcheck/harness/plugin_candidate.hpp"
#include "xposcheck/reference/dtype.hpp"

using namespace xposcheck;
using namespace xposcheck::test;
using Catch::Matchers::Contains;

namespace {

const char* kAxes = "head_dim = 16\nseq_len = [1, 7]\nmem_len = [0, 3]\nlayout = [\"half\", \"interleaved\"]\n";
const char* kDTypes = "[\"fp32\", \"bf16\", \"fp16\"]";

}  // namespace

TEST_CASE("the ABI's 16-bit decoders are exact and its encoders round to nearest even",
          "[external][plugin]") {
  for (std::uint32_t bits = 0; bits < 0x10000; ++bits) {
    const auto h = static_cast<std::uint16_t>(bits);
    const float bf = xposcheck_bf16_to_float(h), fp = xposcheck_fp16_to_float(h);
    if (!std::isnan(bf)) REQUIRE(xposcheck_float_to_bf16(bf) == h);
    if (!std::isnan(fp)) REQUIRE(xposcheck_float_to_fp16(fp) == h);
    REQUIRE(std::isnan(bf) == std::isnan(xposcheck_bf16_to_float(xposcheck_float_to_bf16(bf))));
    REQUIRE(std::isnan(fp) == std::isnan(xposcheck_fp16_to_float(xposcheck_float_to_fp16(fp))));
  }
  // Every 4099th float: all exponents, and (4099 being odd) every pattern of low
  // bits, exact ties included.
  for (std::uint64_t u = 0; u <= 0xFFFFFFFFu; u += 4099) {
    const float f = std::bit_cast<float>(static_cast<std::uint32_t>(u));
    if (std::isnan(f)) continue;
    INFO("float bits " << std::hex << u);
    REQUIRE(xposcheck_bf16_to_float(xposcheck_float_to_bf16(f)) == round_to(DType::bf16, f));
    REQUIRE(xposcheck_fp16_to_float(xposcheck_float_to_fp16(f)) == round_to(DType::fp16, f));
  }
  // Ties: halfway between 1 and the next fp16 goes to even, above it rounds up.
  CHECK(xposcheck_float_to_fp16(1.0f + 0x1p-11f) == 0x3C00);
  CHECK(xposcheck_float_to_fp16(1.0f + 3 * 0x1p-11f) == 0x3C02);
  CHECK(xposcheck_float_to_fp16(65520.0f) == 0x7C00);  // rounds past 65504: infinity
  CHECK(xposcheck_float_to_fp16(0x1p-25f) == 0x0000);  // half the smallest subnormal: even
  CHECK(xposcheck_float_to_fp16(0x1.8p-25f) == 0x0001);
}

TEST_CASE("the correct example plugin passes in every dtype", "[external][plugin]") {
  auto candidate = example_plugin_candidate("rope");
  CHECK(candidate->name() == "example-rope");
  CHECK_THAT(candidate->description(), Contains("fp32 angles") && Contains("native plugin"));
  const auto records = sweep_one(small_grid(kAxes, kDTypes), candidate);
  REQUIRE(records.size() == 24);
  for (const Record& r : records) {
    INFO(r.case_id << " " << dtype_name(r.dtype) << ": " << r.message);
    CHECK(r.outcome == Outcome::pass);
  }
  CHECK(candidate->stats().timed_cases == 24);
}

TEST_CASE("a segfaulting plugin is a CRASH for that case only", "[external][plugin]") {
  const auto records = sweep_one(small_grid(kAxes), example_plugin_candidate("segfault"));
  REQUIRE(records.size() == 8);
  for (const Record& r : records) {
    INFO(r.case_id << ": " << r.message);
    if (r.params.seq_len == 7) {
      CHECK(r.outcome == Outcome::crash);
      CHECK_THAT(r.message, Contains("xposcheck_run crashed: killed by signal 11"));
    } else {
      CHECK(r.outcome == Outcome::pass);
    }
  }
}

TEST_CASE("a plugin declaring a wrong output shape is a DIM_MISMATCH", "[external][plugin]") {
  const auto records = sweep_one(small_grid("head_dim = 16\nseq_len = 7\nmem_len = [0, 3]\n"),
                                 example_plugin_candidate("drop_memory"));
  REQUIRE(records.size() == 2);
  CHECK(records[0].outcome == Outcome::pass);  // no memory: nothing dropped
  CHECK(records[1].outcome == Outcome::dim_mismatch);
  CHECK_THAT(records[1].message,
             Contains("k_out shape: expected [1, 1, 10, 16], got [1, 1, 7, 16] (7 = N)"));
  REQUIRE(records[1].diagnosis);
  CHECK(records[1].diagnosis->verdict == "memory-rows-missing");
  CHECK_THAT(records[1].diagnosis->explanation, Contains("the M = 3 memory keys were left out"));
}

TEST_CASE("a plugin's shape error code is a DIM_MISMATCH relating the sizes", "[external][plugin]") {
  const auto records = sweep_one(small_grid("head_dim = 16\nseq_len = 7\nmem_len = [0, 3]\n"),
                                 example_plugin_candidate("unsliced_scale"));
  REQUIRE(records.size() == 2);
  CHECK(records[0].outcome == Outcome::pass);
  CHECK(records[1].outcome == Outcome::dim_mismatch);
  CHECK_THAT(records[1].message, Contains("The size of tensor a (7) must match the size of tensor "
                                          "b (10)") && Contains("(7 = N, 10 = M + N)"));
}

TEST_CASE("unusable libraries are refused naming the library and the problem", "[external][plugin]") {
  ScratchDir dir("plugin");
  const fs::path text = dir.path / "not-a-library.so";
  std::FILE* f = std::fopen(text.c_str(), "w");
  std::fputs("not an ELF file\n", f);
  std::fclose(f);
  CHECK_THROWS_WITH(make_plugin_candidate(text),
                    Contains("not-a-library.so: unusable native candidate") && Contains("cannot load"));

  Dl_info info{};
  REQUIRE(::dladdr(reinterpret_cast<void*>(&::cos), &info) != 0);  // libm: no xposcheck symbols
  CHECK_THROWS_WITH(make_plugin_candidate(info.dli_fname),
                    Contains("does not export xposcheck_candidate_abi_version"));
  CHECK_THROWS_WITH(make_plugin_candidate(dir.path / "missing.so"), Contains("missing.so"));
}

TEST_CASE("the plugin runner is found and reports bad usage", "[external][plugin]") {
  const fs::path runner = find_plugin_runner();
  CHECK(runner.filename() == "xposcheck-plugin-runner");
  ProcessOptions o;
  o.argv = {runner.string()};
  const ProcessResult r = run_process(o);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err.text(), Contains("usage:"));
  const PluginInfo info = describe_plugin(example_plugin("segfault"), runner);
  CHECK(info.abi_version == XPOSCHECK_CANDIDATE_ABI_VERSION);
  CHECK(info.name == "example-segfault");
}

namespace {

// Processes whose command line mentions the hostile example library.
int hostile_runners() {
  int n = 0;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::ifstream in(entry.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmdline.find("libxposcheck_example_hostile") != std::string::npos &&
        !process_gone(std::atoi(entry.path().filename().c_str())))
      ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("a plugin whose xposcheck_describe hangs is refused in time, its runner killed",
          "[external][plugin][hostile]") {
  Hostile hostile("describe-hang");
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(describe_plugin(example_plugin("hostile"), find_plugin_runner(), 1.0), PluginError);
  CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < 5);
  CHECK(hostile_runners() == 0);
}

TEST_CASE("a plugin name with control characters is refused, naming the plugin",
          "[external][plugin][hostile]") {
  Hostile hostile("bad-name");
  CHECK_THROWS_WITH(make_plugin_candidate(example_plugin("hostile")),
                    Contains("libxposcheck_example_hostile.so") && Contains("xposcheck_describe") &&
                        Contains("control characters"));
}

TEST_CASE("a plugin's error message with invalid bytes becomes a readable CRASH message",
          "[external][plugin][hostile]") {
  Hostile hostile("bad-message");
  const auto records = sweep_one(small_grid("head_dim = 16\nseq_len = [1, 7]\n"), example_plugin_candidate("hostile"));
  REQUIRE(records.size() == 2);
  for (const Record& r : records) {
    CHECK(r.outcome == Outcome::crash);
    CHECK_THAT(r.message, Contains("bad \xEF\xBF\xBD\xEF\xBF\xBD bytes \\x1b[31m red"));
  }
}
