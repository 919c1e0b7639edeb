// The comparison pass against the machine's memory bandwidth: compare_outputs on a
// long case (q_out and k_out, logits off) versus a plain copy of the same buffers.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <cstring>

#include "xposcheck/harness/builtin_candidates.hpp"
#include "xposcheck/harness/compare.hpp"
#include "xposcheck/reference/inputs.hpp"

namespace {

using namespace xposcheck;

struct LongCase {
  Case c;
  Inputs inputs;
  Golden golden;
  std::shared_ptr<const RotaryTables> tables;
  CandidateOutput output;

  LongCase() {
    c.head_dim = 128;
    c.seq_len = 8192;
    c.mem_len = 8192;
    c.heads = 2;
    inputs = generate_inputs(c, 1, DType::fp32);
    GoldenOptions options;
    options.logits = false;
    golden = golden_fast(c, inputs.q, inputs.k, options);
    tables = shared_tables(c);
    output = make_builtin("fp32-angles")->run(c, DType::fp32, inputs.q, inputs.k);
  }
  // Bytes the comparison reads: golden and candidate q_out and k_out.
  double bytes() const {
    return 2.0 * static_cast<double>(golden.q_out.size() + golden.k_out.size()) * sizeof(double);
  }
};

const LongCase& long_case() {
  static const LongCase lc;
  return lc;
}

void BM_compare(benchmark::State& state) {
  const LongCase& lc = long_case();
  const Tolerance tol = resolve_tolerance(DType::fp32, {}, {});
  for (auto _ : state) {
    Record r;
    compare_outputs(lc.c, DType::fp32, lc.golden, *lc.tables, lc.output, tol, r);
    benchmark::DoNotOptimize(r.max_ratio);
  }
  state.counters["bytes/s"] = benchmark::Counter(lc.bytes() * static_cast<double>(state.iterations()),
                                                 benchmark::Counter::kIsRate);
  state.counters["elements/s"] = benchmark::Counter(
      static_cast<double>(lc.golden.q_out.size() + lc.golden.k_out.size()) *
          static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
}

// memcpy of the same four buffers: each byte read once and written once, so its
// bandwidth counts both.
struct CopySink {
  std::vector<double> q, k;
  explicit CopySink(const LongCase& lc) : q(lc.golden.q_out.size()), k(lc.golden.k_out.size()) {}
  void copy(const LongCase& lc) {
    for (const Tensor* t : {&lc.golden.q_out, &lc.output.q_out})
      std::memcpy(q.data(), t->data.data(), q.size() * sizeof(double));
    for (const Tensor* t : {&lc.golden.k_out, &lc.output.k_out})
      std::memcpy(k.data(), t->data.data(), k.size() * sizeof(double));
    benchmark::ClobberMemory();
  }
};

void BM_copy_same_buffers(benchmark::State& state) {
  const LongCase& lc = long_case();
  CopySink sink(lc);
  for (auto _ : state) sink.copy(lc);
  state.counters["bytes/s"] = benchmark::Counter(
      2.0 * lc.bytes() * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

double seconds_of(const auto& fn) {
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The headline figure: copy and comparison alternate within each iteration and the
// fastest run of each is kept, so a noisy neighbour slows both rather than one.
// fraction = comparison bytes/s over copy bytes/s = best copy time / (2 x best
// comparison time), since the copy moves every byte twice.
void BM_fraction_of_copy_bandwidth(benchmark::State& state) {
  const LongCase& lc = long_case();
  const Tolerance tol = resolve_tolerance(DType::fp32, {}, {});
  CopySink sink(lc);
  double best_copy = INFINITY, best_compare = INFINITY;
  for (auto _ : state) {
    best_copy = std::min(best_copy, seconds_of([&] { sink.copy(lc); }));
    best_compare = std::min(best_compare, seconds_of([&] {
      Record r;
      compare_outputs(lc.c, DType::fp32, lc.golden, *lc.tables, lc.output, tol, r);
      benchmark::DoNotOptimize(r.max_ratio);
    }));
  }
  state.counters["copy_ms"] = best_copy * 1e3;
  state.counters["compare_ms"] = best_compare * 1e3;
  state.counters["fraction"] = best_copy / (2.0 * best_compare);
}

BENCHMARK(BM_copy_same_buffers)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_compare)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_fraction_of_copy_bandwidth)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

}  // namespace

BENCHMARK_MAIN();
