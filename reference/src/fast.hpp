#pragma once
// Internals of the fast golden path shared by golden_fast.cpp and logits.cpp.
#include <vector>

#include "xposcheck/reference/case.hpp"
#include "xposcheck/reference/tables.hpp"
#include "xposcheck/reference/tensor.hpp"

namespace xposcheck {

// The outputs of one tensor (queries when query is true, else keys) as unevaluated
// double-double sums hi + lo, before the final rounding: every row shaped as in, or,
// given rows, only those rows of each (batch, head), as [batch * heads][rows][D].
void rotate_dd(const Case& c, const RotaryTables& t, const Tensor& in, bool query,
               const std::vector<long>* rows, std::vector<double>& hi, std::vector<double>& lo);

// Logits of the fast path for the given query rows, by the route logits.cpp documents.
Tensor fast_logits(const Case& c, const RotaryTables& t, const Tensor& q_in,
                   const Tensor& k_in, const Tensor& q_out, const Tensor& k_out,
                   const std::vector<long>& rows);

// Throws std::invalid_argument naming the tensor and both shapes when they differ.
void check_shape(const char* name, const Tensor& t, const Shape& expected);

}  // namespace xposcheck
