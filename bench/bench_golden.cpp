// Golden generation throughput, outputs and gradients, on the benchmark case: batch 1,
// heads 8, N = M = 8192, D = 128 (25.2 M elements of q_out and k_out). Time and
// elements/s are wall-clock (the fast path runs on every core); the CPU column is the
// whole process's CPU time, which shows the work done when other jobs share the machine.
#include <benchmark/benchmark.h>

#include "xposcheck/reference/golden.hpp"
#include "xposcheck/reference/inputs.hpp"
#include "xposcheck/reference/tables.hpp"

namespace {

using namespace xposcheck;

Case big_case() {
  Case c;
  c.head_dim = 128;
  c.heads = 8;
  c.seq_len = 8192;
  c.mem_len = 8192;
  return c;
}

// A slice of the same case for the exact path: the same parameters and centre, 8 query
// and 16 key rows per head (bench/mpmath_golden.py evaluates the same slice).
Case slice_case() {
  Case c = big_case();
  c.seq_len = 8;
  c.mem_len = 8;
  c.center = big_case().centre();
  return c;
}

const Inputs& inputs(const Case& c) {
  static const Inputs big = generate_inputs(big_case(), 2024, DType::fp32);
  static const Inputs slice = generate_inputs(slice_case(), 2024, DType::fp32);
  return c.seq_len == big_case().seq_len ? big : slice;
}

const Upstream& upstream(const Case& c) {
  static const Upstream big = generate_upstream(big_case(), 2024, DType::fp32);
  static const Upstream slice = generate_upstream(slice_case(), 2024, DType::fp32);
  return c.seq_len == big_case().seq_len ? big : slice;
}

void count_elements(benchmark::State& state, const Case& c) {
  state.counters["elements/s"] = benchmark::Counter(
      double(c.output_elements()) * double(state.iterations()), benchmark::Counter::kIsRate);
}

// The seeded inputs of the case, drawn once and rounded to every dtype (as a sweep
// draws them for its batches), or to one.
void BM_inputs(benchmark::State& state) {
  const Case c = big_case();
  const std::vector<DType> all{DType::fp32, DType::bf16, DType::fp16}, one{DType::bf16};
  const std::vector<DType>& dtypes = state.range(0) == 3 ? all : one;
  for (auto _ : state) {
    std::vector<Inputs> in = generate_inputs(c, 2024, dtypes);
    benchmark::DoNotOptimize(in[0].q.data.data());
  }
  state.counters["draws/s"] = benchmark::Counter(
      double(element_count(c.q_shape()) + element_count(c.k_shape())) * double(state.iterations()),
      benchmark::Counter::kIsRate);
}

// Builds the tables of every key position of c; the multiprecision seeds that do not
// depend on the range are kept after the first iteration, as a sweep keeps them.
void build_tables(benchmark::State& state, const Case& c) {
  for (auto _ : state) {
    RotaryTables t(c, c.key_position(0), c.seq_len - 1);
    benchmark::DoNotOptimize(t.cos(0, 0));
  }
  state.counters["entries/s"] = benchmark::Counter(
      double(c.key_rows()) * double(c.pairs()) * double(state.iterations()),
      benchmark::Counter::kIsRate);
}

void BM_tables(benchmark::State& state) { build_tables(state, big_case()); }

// A table of the default grid's dense region (D = 64, N = 1023, M = 100): the seeds
// are most of the cost of a table this size, and a sweep builds many.
void BM_tables_small(benchmark::State& state) {
  Case c;
  c.head_dim = 64;
  c.seq_len = 1023;
  c.mem_len = 100;
  build_tables(state, c);
}

// The tables cached (as in a sweep), logits off: the throughput figure.
void BM_golden_fast(benchmark::State& state) {
  const Case c = big_case();
  const Inputs& in = inputs(c);
  shared_tables(c);
  for (auto _ : state) benchmark::DoNotOptimize(golden_fast(c, in.q, in.k, {false, 0}).q_out.data.data());
  count_elements(state, c);
}

// The backward pass of the same case, next to BM_golden_fast: dq and dk from cached
// tables (the same number of elements as q_out and k_out).
void BM_golden_gradients_fast(benchmark::State& state) {
  const Case c = big_case();
  const Upstream& up = upstream(c);
  shared_tables(c);
  for (auto _ : state) benchmark::DoNotOptimize(golden_gradients_fast(c, up.g_q, up.g_k).dq.data.data());
  count_elements(state, c);
}

// The whole case from scratch: tables, q_out and k_out.
void BM_golden_fast_cold(benchmark::State& state) {
  const Case c = big_case();
  const Inputs& in = inputs(c);
  for (auto _ : state) {
    clear_shared_tables();
    benchmark::DoNotOptimize(golden_fast(c, in.q, in.k, {false, 0}).q_out.data.data());
  }
  count_elements(state, c);
}

// With the default logits: 512 sampled query rows x 16384 keys x 8 heads through BLAS.
void BM_golden_fast_logits(benchmark::State& state) {
  const Case c = big_case();
  const Inputs& in = inputs(c);
  shared_tables(c);
  for (auto _ : state) benchmark::DoNotOptimize(golden_fast(c, in.q, in.k).logits.data.data());
  count_elements(state, c);
}

// 128-bit multiprecision path on the slice (logits off, as for the fast figure).
void BM_golden_exact_slice(benchmark::State& state) {
  const Case c = slice_case();
  const Inputs& in = inputs(c);
  for (auto _ : state) benchmark::DoNotOptimize(golden_exact(c, in.q, in.k, {false, 0}).q_out.data.data());
  count_elements(state, c);
}

// The 128-bit backward pass on the slice, next to BM_golden_exact_slice.
void BM_golden_gradients_exact_slice(benchmark::State& state) {
  const Case c = slice_case();
  const Upstream& up = upstream(c);
  for (auto _ : state) benchmark::DoNotOptimize(golden_gradients_exact(c, up.g_q, up.g_k).dq.data.data());
  count_elements(state, c);
}

}  // namespace

BENCHMARK(BM_inputs)->Arg(1)->Arg(3)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();
BENCHMARK(BM_tables)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();
BENCHMARK(BM_tables_small)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();
BENCHMARK(BM_golden_fast)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();
BENCHMARK(BM_golden_gradients_fast)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();
BENCHMARK(BM_golden_fast_cold)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();
BENCHMARK(BM_golden_fast_logits)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();
BENCHMARK(BM_golden_exact_slice)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();
BENCHMARK(BM_golden_gradients_exact_slice)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();

BENCHMARK_MAIN();
