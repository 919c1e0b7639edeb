#pragma once
// The logits of the sampled query rows against every key, compared a block of keys at
// a time, and the least-squares bias of their errors (docs/tolerances.md).
#include <memory>
#include <vector>

#include "compare_rows.hpp"
#include "xposcheck/harness/compare.hpp"

namespace xposcheck::detail {

class LogitComparer {
 public:
  // rows: the sampled query rows; query_norms: |golden q_out| of each, [bh][rows].
  // fixed >= 0: the relative rule's allowance for every logit.
  LogitComparer(const Case& c, DType dtype, std::vector<long> rows, std::vector<double> query_norms,
                const Allowance& q_allow, const Allowance& k_allow, const Tolerance& tol, double fixed,
                const CompareOptions& options);
  ~LogitComparer();
  LogitComparer(const LogitComparer&) = delete;
  LogitComparer& operator=(const LogitComparer&) = delete;

  // Keys first..first+count-1: golden and candidate logits [bh][rows][count] and the
  // golden k_out rows [bh][count][D]. A query row's keys past its visible count
  // (CompareOptions::visible_keys) are not read.
  void add_keys(long first, long count, const double* golden, const double* got, const double* golden_keys);
  TensorStats finish();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace xposcheck::detail
