// What a diagnosis costs next to the comparison it follows, on failing cases of
// realistic size: D = 128, N = 1024, M = 100 (the x-transformers report). The
// `x_compare` counter of each diagnose benchmark is its process CPU time over
// compare_outputs' on the same case (docs/diagnosis.md): CPU time, because the
// comparison may use several threads and shared machines distort wall time.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <ctime>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "xposcheck/harness/builtin_candidates.hpp"
#include "xposcheck/harness/compare.hpp"
#include "xposcheck/harness/diagnosis.hpp"
#include "xposcheck/harness/sweep.hpp"
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
  double compare_cpu_s = 0;  // process CPU time of one compare_outputs, best of five

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
  options.max_logit_rows = kSweepLogitRows;
  f.golden = golden_fast(f.c, f.inputs.q, f.inputs.k, options);
  f.tables = shared_tables(f.c);
  f.tol = resolve_tolerance(dtype, {}, {});
  f.output = make_builtin(candidate)->run(f.c, dtype, f.inputs.q, f.inputs.k);
  f.compare_cpu_s = 1e9;
  for (int i = 0; i < 5; ++i) {
    const std::clock_t t0 = std::clock();
    f.compare(f.record);
    f.compare_cpu_s =
        std::min(f.compare_cpu_s, static_cast<double>(std::clock() - t0) / CLOCKS_PER_SEC);
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
  const std::clock_t t0 = std::clock();
  for (auto _ : state) {
    const Diagnosis d = diagnose(f.input(), f.record);
    benchmark::DoNotOptimize(d.verdict.data());
  }
  const double per_run = static_cast<double>(std::clock() - t0) / CLOCKS_PER_SEC /
                         static_cast<double>(state.iterations());
  state.counters["x_compare"] = per_run / f.compare_cpu_s;
  state.SetLabel(diagnose(f.input(), f.record).verdict);
}

}  // namespace

int main(int argc, char** argv) {
  const std::pair<const char*, DType> failing_cases[] = {{"positions-from-zero", DType::fp32},
                                                         {"angles-in-dtype", DType::bf16},
                                                         {"torchscale-centre", DType::fp32},
                                                         {"random-garbage", DType::fp32}};
  for (const auto& [candidate, dtype] : failing_cases) {
    const std::string label = fmt::format("{}/{}", candidate, dtype_name(dtype));
    using Function = void (*)(benchmark::State&, const char*, DType);
    const std::pair<const char*, Function> steps[] = {{"compare", BM_Compare},
                                                      {"diagnose", BM_Diagnose}};
    for (const auto& [name, fn] : steps) {
      benchmark::RegisterBenchmark(fmt::format("{}/{}", name, label).c_str(), fn, candidate, dtype)
          ->MeasureProcessCPUTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
