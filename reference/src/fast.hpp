#pragma once
// Internals of the fast golden path shared by golden_fast.cpp, logits.cpp and
// golden_blocks.cpp. Rows are addressed as the block layout [batch * heads][count][D]
// (a whole tensor is the block of all its rows), row i of each head at the position of
// row first + i of q (query) or k.
#include <cstddef>
#include <vector>

#include "direction.hpp"
#include "xposcheck/reference/case.hpp"
#include "xposcheck/reference/golden.hpp"
#include "xposcheck/reference/tables.hpp"
#include "xposcheck/reference/tensor.hpp"

namespace xposcheck {

// Rounded outputs of rows first..first+count-1 of every (batch, head): in to out;
// backward, the transpose (rotation by -phi, the same sigma^e): input gradients.
// correctly_rounded as GoldenOptions' (forward only; backward is always rounded once).
void rotate_block(const Case& c, const RotaryTables& t, bool query, long first, long count,
                  const double* in, double* out, Direction dir = Direction::forward,
                  bool correctly_rounded = true);

// The output of one row at position p as the unevaluated double-double hi + lo,
// before its final rounding.
void rotate_dd_row(const Case& c, const RotaryTables& t, bool query, long p, const double* x,
                   double* hi, double* lo);

// The outputs of one tensor (queries when query is true, else keys) as unevaluated
// double-double sums hi + lo, before the final rounding: every row shaped as in, or,
// given rows, only those rows of each (batch, head), as [batch * heads][rows][D].
void rotate_dd(const Case& c, const RotaryTables& t, const Tensor& in, bool query,
               const std::vector<long>* rows, Values& hi, Values& lo);

// Whether the fast path's logits of `rows` query rows take the double-double route
// (small cases, when the options allow it) rather than plain dot products of the
// rounded outputs; logits.cpp explains both.
bool dd_logits_route(const Case& c, std::size_t rows, const GoldenOptions& options);

// One head's logits, out[i * stride + n] for query row i < nr and key n < keys:
// of double-double rows (qh + ql, kh + kl) by Dot2, or of rounded rows by plain dot
// products (each a sum over D in order, whichever keys share the call).
void dd_logits_head(const double* qh, const double* ql, long nr, const double* kh,
                    const double* kl, long keys, long d, double* out, long stride);
void plain_logits_head(const double* q, long nr, const double* k, long keys, long d, double* out, long stride);

// Logits of the fast path for the given query rows, by the route logits.cpp documents;
// `visible` as logits_of's (the double-double route, for small cases, computes all).
Tensor fast_logits(const Case& c, const RotaryTables& t, const Tensor& q_in,
                   const Tensor& k_in, const Tensor& q_out, const Tensor& k_out,
                   const std::vector<long>& rows, const GoldenOptions& options,
                   const std::vector<long>* visible = nullptr);

// Throws std::invalid_argument naming the tensor and both shapes when they differ.
void check_shape(const char* name, const Tensor& t, const Shape& expected);

}  // namespace xposcheck
