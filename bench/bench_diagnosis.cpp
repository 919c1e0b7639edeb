// What a diagnosis costs next to the comparison it follows, on failing cases of
// realistic size: D = 128, N = 1024, M = 100 (the x-transformers report). The
// `x_compare` counter of each diagnose benchmark is its time over compare_outputs' time
// on the same case (docs/diagnosis.md).
#include <benchmark/benchmark.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "xposcheck/harness/builtin_candidates.hpp"
#include "xposcheck/harness/compare.hpp"
#include "xposcheck/harness/diagnosis.hpp"
#include "xposcheck/reference/golden.hpp"
#include "xposcheck/reference/inputs.hpp"

namespace {

using namespace xposcheck;

struct Failing {
  Case c;
  DType dtype;
  Inputs inputs;
  Golden golden;
  std::shared_ptr<const RotaryTables> tables;
  Tolerance tol;
  CandidateOutput output;
  Record record;
  double compare_s = 0;  // one compare_outputs, best of five

  void compare(Record& r) const { compare_outputs(c, dtype, golden, *tables, output, tol, r); }
  DiagnosisInput input() const {
    return {&c, dtype, &inputs.q, &inputs.k, &golden, tables.get(), &tol, &output, {}, false};
  }
};

const Failing& failing(const std::string& candidate, DType dtype) {
  static std::map<std::pair<std::string, DType>, std::unique_ptr<Failing>> cache;
  auto& slot = cache[{candidate, dtype}];
  if (slot) return *slot;
  slot = std::make_unique<Failing>();
  Failing& f = *slot;
  f.c.head_dim = 128;
  f.c.seq_len = 1024;
  f.c.mem_len = 100;
  f.dtype = dtype;
  f.inputs = generate_inputs(f.c, 1, dtype);
  GoldenOptions options;
  options.max_logit_rows = 128;  // the sweep command's default
  f.golden = golden_fast(f.c, f.inputs.q, f.inputs.k, options);
  f.tables = shared_tables(f.c);
  f.tol = resolve_tolerance(dtype, {}, {});
  f.output = make_builtin(candidate)->run(f.c, dtype, f.inputs.q, f.inputs.k);
  f.compare_s = 1e9;
  for (int i = 0; i < 5; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f.compare(f.record);
    f.compare_s = std::min(f.compare_s, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return f;
}

void BM_Compare(benchmark::State& state, const char* candidate, DType dtype) {
  const Failing& f = failing(candidate, dtype);
  for (auto _ : state) {
    Record r;
    f.compare(r);
    benchmark::DoNotOptimize(r.max_ratio);
  }
}

void BM_Diagnose(benchmark::State& state, const char* candidate, DType dtype) {
  const Failing& f = failing(candidate, dtype);
  if (!wants_diagnosis(f.record)) {
    state.SkipWithError("the candidate passes this case: nothing to diagnose");
    return;
  }
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    const Diagnosis d = diagnose(f.input(), f.record);
    benchmark::DoNotOptimize(d.verdict.data());
  }
  const double per_run = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
                         static_cast<double>(state.iterations());
  state.counters["x_compare"] = per_run / f.compare_s;
  state.SetLabel(diagnose(f.input(), f.record).verdict);
}

}  // namespace

BENCHMARK_CAPTURE(BM_Compare, positions_from_zero_fp32, "positions-from-zero", DType::fp32)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Diagnose, positions_from_zero_fp32, "positions-from-zero", DType::fp32)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Compare, angles_in_dtype_bf16, "angles-in-dtype", DType::bf16)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Diagnose, angles_in_dtype_bf16, "angles-in-dtype", DType::bf16)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Compare, torchscale_centre_fp32, "torchscale-centre", DType::fp32)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Diagnose, torchscale_centre_fp32, "torchscale-centre", DType::fp32)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Compare, random_garbage_fp32, "random-garbage", DType::fp32)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Diagnose, random_garbage_fp32, "random-garbage", DType::fp32)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
