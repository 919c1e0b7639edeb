#pragma once
// Portable, seeded q and k inputs and upstream gradients, rounded to the candidate dtype.
#include <cstdint>
#include <span>
#include <vector>

#include "xposcheck/reference/case.hpp"
#include "xposcheck/reference/dtype.hpp"
#include "xposcheck/reference/tensor.hpp"

namespace xposcheck {

// SplitMix64 (Steele, Lea, Flood 2014): 64-bit state, integer-only, so the same
// sequence on every platform and compiler.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next();
 private:
  std::uint64_t state_;
};

// Approximately standard normal: the sum of 12 uniforms k/2^32 minus 6 (Irwin-Hall).
// Every step is exact in binary64, so the value is bit-identical everywhere.
double portable_normal(SplitMix64& rng);

struct Inputs {
  Tensor q;  // [batch, heads, N, D]
  Tensor k;  // [batch, heads, M+N, D]
};

// q is drawn first, then k, each in C order, from SplitMix64(seed); every value is
// rounded to dtype. The unrounded draws do not depend on the dtype.
Inputs generate_inputs(const Case& c, std::uint64_t seed, DType dtype);

// generate_inputs for each of `dtypes`, in that order, drawing once: the draws cost
// several times the rounding.
std::vector<Inputs> generate_inputs(const Case& c, std::uint64_t seed, std::span<const DType> dtypes);

// Rows first..first+count-1 of every (batch, head) of q (query) or of k, the values
// generate_inputs gives them, to out as [batch * heads][count][D]: a long case's inputs
// block by block. std::invalid_argument when the rows leave the tensor.
void generate_rows(const Case& c, std::uint64_t seed, DType dtype, bool query, long first,
                   long count, double* out);

// Upstream gradients for the backward pass: d loss / d q_out and d loss / d k_out.
struct Upstream {
  Tensor g_q;  // [batch, heads, N, D]
  Tensor g_k;  // [batch, heads, M+N, D]
};

// The draws that follow q and k in the stream of generate_inputs(c, seed, dtype): g_q
// first, then g_k, each in C order, rounded to dtype. So they are never the draws of
// the inputs of the same (case, seed), and like them do not depend on the dtype.
Upstream generate_upstream(const Case& c, std::uint64_t seed, DType dtype);

}  // namespace xposcheck
