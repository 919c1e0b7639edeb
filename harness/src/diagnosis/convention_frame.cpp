// A convention's frame: SPEC's outputs moved to a centre between two positions, and
// the whole case judged again there.
#include "diagnosis/convention_frame.hpp"

#include <cmath>
#include <vector>

#include "xposcheck/harness/compare.hpp"
#include "xposcheck/reference/golden.hpp"
#include "xposcheck/reference/tables.hpp"

namespace xposcheck {

CentreOffsetMove::CentreOffsetMove(const ConventionFrame& frame) {
  const Case& c = frame.params;
  if (frame.centre_offset == 0 || !c.xpos) return;
  // ln sigma at one position past the centre is ln zeta_j / B; a table of one
  // position knows it for any position.
  const long p = c.first_query_position();
  const RotaryTables tables(c, p, p);
  query_.assign(static_cast<std::size_t>(c.head_dim), 1.0);
  key_ = query_;
  for (long j = 0; j < c.pairs(); ++j) {
    const double e = frame.centre_offset * tables.log_scale(c.centre() + 1, j);
    for (const long i : {c.pair_a(j), c.pair_b(j)}) {
      query_[static_cast<std::size_t>(i)] = std::exp(-e);
      key_[static_cast<std::size_t>(i)] = std::exp(e);
    }
  }
}

void CentreOffsetMove::apply(bool query, double* values, long rows) const {
  const std::vector<double>& factor = query ? query_ : key_;
  const long d = static_cast<long>(factor.size());
  for (long r = 0; r < rows && d > 0; ++r) {
    double* row = values + r * d;
    for (long i = 0; i < d; ++i) row[i] *= factor[static_cast<std::size_t>(i)];
  }
}

namespace diagnosis {

Record judged_whole_in_frame(const DiagnosisInput& in, const ConventionFrame& frame) {
  Record moved;
  moved.params = frame.params;
  moved.dtype = in.dtype;
  // The logits on as many rows as the judging budget affords.
  Golden golden = golden_fast(frame.params, *in.q_in, *in.k_in, judging_golden_options(frame.params, 0));
  const long d = frame.params.head_dim;
  const CentreOffsetMove move(frame);
  move.apply(true, golden.q_out.data.data(), static_cast<long>(golden.q_out.size()) / d);
  move.apply(false, golden.k_out.data.data(), static_cast<long>(golden.k_out.size()) / d);
  compare_outputs(frame.params, in.dtype, golden, *shared_tables(frame.params), *in.output, *in.tolerance, moved);
  return moved;
}

}  // namespace diagnosis
}  // namespace xposcheck
