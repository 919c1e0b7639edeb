#pragma once
// Internals of the diagnosis: the evidence every hypothesis sees, the sampled rows,
// and conventions (SPEC with one thing changed) evaluated in fp64.
#include <string>
#include <vector>

#include "xposcheck/harness/diagnosis.hpp"
#include "xposcheck/harness/record.hpp"
#include "xposcheck/harness/tolerance.hpp"
#include "xposcheck/reference/golden.hpp"
#include "xposcheck/reference/tables.hpp"

namespace xposcheck::diagnosis {

// One (lead, row) of a tensor; lead = batch * heads + head.
struct SampledRow {
  long lead = 0, row = 0;
};

// Every (lead, row) when there are at most max_rows, else max_rows of them spread
// evenly over the rows (first and last included), the leads taken in turn, plus the
// rows named in `extra` (the worst elements of the record).
std::vector<SampledRow> sample_rows(long leads, long rows, std::size_t max_rows,
                                    const std::vector<SampledRow>& extra = {});

// Everything a hypothesis may look at.
struct Evidence {
  const Case& c;
  DType dtype;
  const Tensor& q_in;
  const Tensor& k_in;
  const Golden& golden;
  const RotaryTables& tables;
  const Tolerance& tol;
  const CandidateOutput* output;    // null without outputs; shapes checked otherwise
  const Record& record;
  const FreshRun& fresh_run;
  bool stateful = false;
  // Filled by the diagnosis as it goes.
  std::vector<SampledRow> q_rows = {}, k_rows = {};
  Estimates estimates = {};
  std::vector<TensorDecomposition> decomposition = {};
};

// The rotary XPOS map of SPEC section 1 with its conventions spelled out, so that a
// hypothesis changes one of them.
struct Convention {
  Layout layout = Layout::half;
  double query_shift = 0, key_shift = 0;   // added to positions (angle and scale)
  double query_centre = 0, key_centre = 0;
  double query_exponent = 1, key_exponent = -1;
  double rotation = 1;                     // -1: rotated the other way
  double interpolation = 1;                // alpha
  double base = 10000;                     // theta' actually used
  bool xpos = true;
  bool scale_passthrough = false;          // pass-through feature R+i gets pair i mod R/2's scale
  // Multiplier of the angle term of the allowance: the tolerance's unit_ratio (fp32
  // angles) by default; 1 allows angles rounded to the dtype itself.
  double angle_unit_ratio = -1;            // < 0: the tolerance's
};

Convention spec_convention(const Case& c);

// theta * f^(R / (R - 2)): SPEC's NTK-aware base.
double rescaled_base(const Case& c);

// Scores the candidate's outputs against the convention's fp64 reference on the sampled
// rows (keys first), in dtype ulps at the pair magnitude with the record's tolerance.
// Stops after `misfit_rows_limit` rows with an element beyond tolerance.
HypothesisScore score_convention(const Evidence& ev, const Convention& conv,
                                 std::size_t misfit_rows_limit = 8);

// Phase / magnitude decomposition of q_out and k_out over the sampled rows, with a fit
// for every rotated pair.
std::vector<TensorDecomposition> decompose(const Evidence& ev);
// Position shifts and centres implied by the fits of every pair.
Estimates estimate_conventions(const Case& c, DType dtype,
                               const std::vector<TensorDecomposition>& parts);
// Keeps `count` representative pairs, spread from the highest frequency to the lowest.
void keep_representative_fits(TensorDecomposition& part, std::size_t count = 8);

}  // namespace xposcheck::diagnosis
