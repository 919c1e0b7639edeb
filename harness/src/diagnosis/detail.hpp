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
  // The rows the tensors above hold, ascending, when they hold a sample alone (a case
  // judged in blocks: DiagnosisInput::q_rows_held); empty when they hold every row.
  const std::vector<long>& q_held;
  const std::vector<long>& k_held;
  // Filled by the diagnosis as it goes.
  std::vector<SampledRow> q_rows = {}, k_rows = {};
  Estimates estimates = {};
  std::vector<TensorDecomposition> decomposition = {};
};

// Whether the record's logits were compared and pass, elementwise and in their bias:
// what a convention (which keeps every logit) must show.
bool logits_pass(const Record& record);

// Where row s of q (key false) or k lies in the evidence's tensors: lead * rows + row
// when they are whole, its place among the rows held otherwise (std::logic_error when
// they do not hold it).
std::size_t flat_row(const Evidence& ev, bool key, const SampledRow& s);

// Streams: the position and XPOS centre a candidate used for one row, when they follow
// the calls (a lost offset, a stale table, a centre per call) rather than one shift.
struct RowFrame {
  double position = 0;
  std::optional<double> centre;  // none: the convention's own
};
using RowFrameRule = RowFrame (*)(const Case& c, bool key, long row);

// The rotary XPOS map of SPEC section 1 with its conventions spelled out, so that a
// hypothesis changes one of them. A pair's angle is rotation * omega_j * (p + shift);
// its log-scale exponent * lambda_j * (scale_factor * (p + shift) - centre).
struct Convention {
  Layout layout = Layout::half;
  double query_shift = 0, key_shift = 0;   // added to positions (angle and scale)
  double query_centre = 0, key_centre = 0; // in the shifted positions
  double query_exponent = 1, key_exponent = -1;
  double query_scale_factor = 1, key_scale_factor = 1;  // kappa: position's weight in the scale
  double rotation = 1;                     // -1: rotated the other way
  double angle_offset = 0;                 // added to every angle (pi/2 with -1: cos and sin swapped)
  double interpolation = 1;                // alpha
  double base = 10000;                     // theta' actually used
  std::vector<double> omega;               // when set: omega_j per pair, instead of base / alpha
  std::vector<double> lambda;              // when set: ln(zeta_j) / B per pair, instead of SPEC's
  bool xpos = true;
  long rotary_offset = 0;                  // first rotated feature (D - R: the last R rotate)
  bool positions_in_dtype = false;         // positions rounded to the dtype before use
  // With positions_in_dtype: each tensor's row index rounded, then its first position
  // added and the sum rounded again (arange(rows, dtype) + offset, as a cached-key path
  // makes the queries' positions).
  bool rounded_from_first_row = false;
  // Tables stored in the dtype, the rotation then done from them: entries past the
  // dtype's range overflow, and those below its normal range keep few bits. Either cos
  // and sin with the XPOS scale folded in (cos sigma^e, sin sigma^e: a fused kernel's
  // cached tables), or the scale a table of its own that multiplies the rotated pair
  // (cos, sin and sigma^e each in the dtype, as code in the dtype's tensors does).
  enum class DtypeTables { none, folded, separate_scale };
  DtypeTables tables_in_dtype = DtypeTables::none;
  // Per-feature tables (cos and sin, the XPOS scale) laid out for the other pairing than
  // the rotation's: feature e takes the entry of its pair in the other layout (pair e
  // mod R/2 of cat(t, t) against neighbouring pairs, pair e / 2 of repeat_interleave
  // against half pairs), so a pair's two features get different angles or scales.
  bool angle_tables_other_layout = false, scale_tables_other_layout = false;
  // How many times the M memory key rows are rotated and scaled: 1 in SPEC, 0 for keys
  // cached unrotated and never rotated, 2 for keys cached rotated and rotated again
  // (their angle and XPOS exponent, centre included, multiplied by it).
  double memory_rotations = 1;
  // -2: pass-through features copied; -1: feature R+i gets pair i mod R/2's scale;
  // j >= 0: every pass-through feature gets pair j's scale.
  long passthrough_pair = -2;
  // Multiplier of the angle term of the allowance: the tolerance's unit_ratio (fp32
  // angles) by default; 1 allows angles rounded to the dtype itself.
  double angle_unit_ratio = -1;            // < 0: the tolerance's
  RowFrameRule row_frame = nullptr;        // when set: each row's position and centre
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
// rotation -1: the angle errors against SPEC rotated the other way (phi -> -phi), so that
// code with a reversed rotation shows its shifts and frequencies as SPEC's code would.
// reference_from_inputs: SPEC's output pairs made from the inputs in ev.c's pairing,
// where that is not the golden tensor's (the case read in the other layout).
std::vector<TensorDecomposition> decompose(const Evidence& ev, double rotation = 1,
                                           bool reference_from_inputs = false);
// The shift s of positions that explains a tensor's angle errors as omega_j * s for
// every pair (constant over the positions middle +- span / 2), or none.
std::optional<double> position_shift(const TensorDecomposition& t, double middle, double span);
// Position shifts and centres implied by the fits of every pair.
Estimates estimate_conventions(const Case& c, DType dtype,
                               const std::vector<TensorDecomposition>& parts);
// omega_j = theta^(-2j/R) / alpha of a convention (its omega vector when set).
std::vector<double> pair_frequencies(const Case& c, const Convention& conv);
// ln(zeta_j) / B of every pair: the XPOS log-scale per position.
std::vector<double> pair_log_zeta(const Case& c);

// Keeps `count` representative pairs, spread from the highest frequency to the lowest.
void keep_representative_fits(TensorDecomposition& part, std::size_t count = 8);

}  // namespace xposcheck::diagnosis
