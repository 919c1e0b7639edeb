// Runs the built xposcheck executable: `golden` writes the files it promises, with
// the shapes it promises, and every bad invocation exits 2 with a message naming
// the flag or file at fault.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "xposcheck/reference/golden.hpp"
#include "xposcheck/reference/inputs.hpp"
#include "xposcheck/reference/npy.hpp"

#include "cli_runner.hpp"

using namespace xposcheck;
using namespace xposcheck::testing;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

Case small_case(long mem_len = 3) {
  Case c;
  c.head_dim = 8;
  c.seq_len = 6;
  c.mem_len = mem_len;
  return c;
}

// Writes fp32 inputs of the given shapes; returns them as generated for small_case.
void write_inputs(const TempDir& dir, const Shape& q_shape, const Shape& k_shape) {
  Case c = small_case();
  const Inputs in = generate_inputs(c, 3, DType::fp32);
  write_npy(dir / "q.npy", Tensor(q_shape, in.q.data), NpyStorage::f4);
  write_npy(dir / "k.npy", Tensor(k_shape, in.k.data), NpyStorage::f4);
}

const std::string kCaseFlags = "golden --head-dim 8 --seq-len 6 --mem-len 3";

}  // namespace

TEST_CASE("golden writes inputs, outputs, logits and case.json", "[cli][golden]") {
  TempDir dir;
  const Run r = run_cli(dir, kCaseFlags + " --batch 2 --heads 3 --seed 5 --dtype bf16 "
                                            "--out " + q(dir / "g"));
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Contains("D8-N6-M3-b2-h3") && Contains("max |q_out|"));
  Case c = small_case();
  c.batch = 2;
  c.heads = 3;
  const Inputs in = generate_inputs(c, 5, DType::bf16);
  const Golden g = golden_fast(c, in.q, in.k);
  const auto load = [&](const char* name) { return read_npy(dir / "g" / name).tensor; };
  CHECK(load("q_in.npy").data == in.q.data);
  CHECK(load("k_in.npy").data == in.k.data);
  CHECK(load("q_out.npy").shape == Shape{2, 3, 6, 8});
  CHECK(load("q_out.npy").data == g.q_out.data);
  CHECK(load("k_out.npy").shape == Shape{2, 3, 9, 8});
  CHECK(load("k_out.npy").data == g.k_out.data);
  CHECK(load("logits.npy").shape == Shape{2, 3, 6, 9});
  const auto j = nlohmann::json::parse(slurp(dir / "g" / "case.json"));
  CHECK(j["case_id"] == "D8-N6-M3-b2-h3");
  CHECK(j["dtype"] == "bf16");
  CHECK(j["seed"] == 5);
  CHECK(j["inputs"]["source"] == "generated");
  CHECK(j["case"]["rotary_dim"] == 8);
  CHECK(j["case"]["center"] == 3);
  CHECK(j["case"]["base"] == 10000.0);
  CHECK(j["golden"] == "fast");
  CHECK(j["logit_rows"].is_null());
  CHECK(j["version"].is_string());
}

TEST_CASE("golden keeps 2-D and 3-D inputs' leading dimensions", "[cli][golden]") {
  TempDir dir;
  write_inputs(dir, {6, 8}, {9, 8});
  Run r = run_cli(dir, kCaseFlags + " --q-in " + q(dir / "q.npy") + " --k-in " +
                             q(dir / "k.npy") + " --exact --out " + q(dir / "two"));
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(read_npy(dir / "two" / "q_out.npy").tensor.shape == Shape{6, 8});
  CHECK(read_npy(dir / "two" / "k_out.npy").tensor.shape == Shape{9, 8});
  CHECK(read_npy(dir / "two" / "logits.npy").tensor.shape == Shape{6, 9});
  CHECK(read_npy(dir / "two" / "q_in.npy").tensor.data ==
        read_npy(dir / "q.npy").tensor.data);
  const auto j = nlohmann::json::parse(slurp(dir / "two" / "case.json"));
  CHECK(j["dtype"] == "<f4");
  CHECK(j["golden"] == "exact");
  CHECK(j["seed"].is_null());
  CHECK(j["inputs"]["source"] == "files");

  TempDir dir3;
  Case c = small_case();
  c.heads = 2;
  const Inputs in = generate_inputs(c, 3, DType::fp16);
  write_npy(dir3 / "q.npy", Tensor({2, 6, 8}, in.q.data), NpyStorage::f2);
  write_npy(dir3 / "k.npy", Tensor({2, 9, 8}, in.k.data), NpyStorage::f2);
  r = run_cli(dir3, kCaseFlags + " --q-in " + q(dir3 / "q.npy") + " --k-in " +
                          q(dir3 / "k.npy") + " --logit-rows 2 --out " + q(dir3 / "three"));
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(read_npy(dir3 / "three" / "k_out.npy").tensor.shape == Shape{2, 9, 8});
  CHECK(read_npy(dir3 / "three" / "k_out.npy").tensor.data ==
        golden_fast(c, in.q, in.k).k_out.data);
  CHECK(read_npy(dir3 / "three" / "logits.npy").tensor.shape == Shape{2, 2, 9});
  const auto j3 = nlohmann::json::parse(slurp(dir3 / "three" / "case.json"));
  CHECK(j3["logit_rows"] == nlohmann::json::array({0, 5}));
  CHECK(j3["case"]["heads"] == 2);
  CHECK(j3["dtype"] == "<f2");
}

TEST_CASE("golden usage errors exit 2 and name the flag", "[cli][golden]") {
  TempDir dir;
  write_inputs(dir, {6, 8}, {9, 8});
  const std::string files = " --q-in " + q(dir / "q.npy") + " --k-in " + q(dir / "k.npy");
  const std::string out = " --out " + q(dir / "o");
  struct Bad {
    std::string args, message;
  };
  for (const Bad& b : {
           Bad{kCaseFlags, "--out"},
           Bad{"golden --seq-len 6 --out x", "--head-dim"},
           Bad{"golden --head-dim 7 --seq-len 6" + out, "invalid head_dim = 7"},
           Bad{kCaseFlags + " --rotary-dim 10" + out, "invalid rotary_dim = 10"},
           Bad{kCaseFlags + " --base 1" + out, "--base: 1 is out of range: want a finite number > 1"},
           Bad{kCaseFlags + " --layout diagonal" + out, "--layout"},
           Bad{kCaseFlags + " --dtype fp64" + out, "fp64"},
           Bad{kCaseFlags + " --q-in " + q(dir / "q.npy") + out, "--q-in requires --k-in"},
           Bad{kCaseFlags + " --k-in " + q(dir / "k.npy") + out, "--k-in requires --q-in"},
           Bad{kCaseFlags + files + " --seed 3" + out, "excludes --seed"},
           Bad{kCaseFlags + files + " --dtype bf16" + out, "excludes --dtype"},
           Bad{kCaseFlags + files + " --heads 4" + out, "--heads 4 disagrees"},
       }) {
    INFO(b.args);
    const Run r = run_cli(dir, b.args);
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Contains(b.message));
  }
  CHECK_FALSE(fs::exists(dir / "o"));
}

TEST_CASE("golden input errors exit 2 and name the file", "[cli][golden]") {
  TempDir dir;
  const auto run_with = [&](const Shape& q_shape, const Shape& k_shape) {
    write_npy(dir / "q.npy", Tensor(q_shape));
    write_npy(dir / "k.npy", Tensor(k_shape));
    return run_cli(dir, kCaseFlags + " --q-in " + q(dir / "q.npy") + " --k-in " +
                              q(dir / "k.npy") + " --out " + q(dir / "o"));
  };
  Run r = run_with({6, 8}, {8, 8});
  CHECK(r.status == 2);
  CHECK_THAT(r.err, Contains("--k-in") && Contains("k.npy") && Contains("8 rows") &&
                        Contains("--mem-len + --seq-len = 9"));
  r = run_with({5, 8}, {9, 8});
  CHECK(r.status == 2);
  CHECK_THAT(r.err, Contains("q.npy") && Contains("5 rows, expected --seq-len = 6"));
  r = run_with({6, 4}, {9, 4});
  CHECK(r.status == 2);
  CHECK_THAT(r.err, Contains("q.npy") && Contains("last dimension 4 != --head-dim 8"));
  r = run_with({2, 6, 8}, {3, 9, 8});
  CHECK(r.status == 2);
  CHECK_THAT(r.err, Contains("leading dimensions differ"));
  r = run_with({8}, {9, 8});
  CHECK(r.status == 2);
  CHECK_THAT(r.err, Contains("q.npy") && Contains("rank 1"));

  const std::string k_arg = " --k-in " + q(dir / "k.npy") + " --out " + q(dir / "o");
  r = run_cli(dir, kCaseFlags + " --q-in " + q(dir / "absent.npy") + k_arg);
  CHECK(r.status == 2);
  CHECK_THAT(r.err, Contains("--q-in") && Contains("absent.npy") && Contains("no such file"));
  std::ofstream(dir / "junk.npy") << "this is not a numpy file";
  r = run_cli(dir, kCaseFlags + " --q-in " + q(dir / "junk.npy") + k_arg);
  CHECK(r.status == 2);
  CHECK_THAT(r.err, Contains("junk.npy") && Contains("bad magic"));
  const std::string good = slurp(dir / "k.npy");
  std::ofstream(dir / "cut.npy", std::ios::binary) << good.substr(0, good.size() - 5);
  r = run_cli(dir, kCaseFlags + " --q-in " + q(dir / "cut.npy") + k_arg);
  CHECK(r.status == 2);
  CHECK_THAT(r.err, Contains("cut.npy") && Contains("data too short"));
}

// The files are written on a thread of their own while blocks are computed: a write
// that fails there stops the run with the file's name, and nothing half-written stays.
TEST_CASE("golden stops at a failed write, names the file and leaves no partial files", "[cli][golden]") {
  TempDir dir;
  fs::create_directories(dir / "o");
  fs::create_symlink("/dev/full", dir / "o" / "k_out.npy");
  // 100010 key rows of D = 8: two blocks of 65536 rows, so the failure meets a running pipe.
  const Run r = run_cli(dir, "golden --head-dim 8 --seq-len 10 --mem-len 100000 --no-xpos --out " + q(dir / "o"));
  CHECK(r.status == 2);
  CHECK_THAT(r.err, Contains("k_out.npy") && Contains("write failed") && Contains("No space left"));
  std::size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir / "o")) entries += e.path().filename() == "k_out.npy" ? 0 : 1;
  CHECK(entries == 0);
}
