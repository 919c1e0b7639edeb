#pragma once
// Built-in candidates are recipes: how angles are formed, which precision the
// arithmetic runs in, and which known bug (if any) is planted.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "xposcheck/harness/candidate.hpp"

namespace xposcheck::candidates {

enum class AngleMode {
  fp64,   // phi, cos, sin and sigma in binary64
  fp32,   // p * omega in fp32, then cosf / sinf / powf: what most frameworks do
  dtype,  // p and omega rounded to the dtype and multiplied there (a real bug)
};

enum class Arithmetic {
  wide,   // products and sums in the angle precision, one rounding to the dtype
  dtype,  // tables rounded to the dtype, then every product and sum too (Hugging Face)
};

// The known bug a buggy recipe plants (one at most); the verdict the diagnosis
// should give each is in the registry (builtin_candidates()).
enum class PlantedBug {
  none,
  unsliced_scale,       // x-transformers: M+N-row scale applied to N query rows
  positions_from_zero,  // keys counted from the first query: M positions late
  swapped_qk_scale,     // queries get sigma^-1, keys sigma
  wrong_layout,         // half <-> interleaved pairing
  centres_differ,       // queries centred on N, keys on the M+N key rows
  reversed_rotation,    // rotates by -phi (sin with the wrong sign)
  scale_on_passthrough, // pass-through feature R+i scaled like pair i mod R/2
  ignore_interpolation, // angles p * omega, alpha forgotten
  ntk_plain_factor,     // NTK base theta * f instead of theta * f^(R/(R-2))
  centre_unrounded,     // centre N/2 by true division (odd N: x.5)
  centre_on_key_range,  // q and k centred on ceil((M+N)/2) from the first key (torchscale)
  random_outputs,       // seeded garbage of the right shape
  packed_positions_continue,  // packed batches: positions run on across sequence boundaries
  positions_in_dtype,   // the position index rounded to the dtype (a position tensor in bf16/fp16)
};

// The known bug a recipe's backward pass plants (its forward pass is then correct).
enum class BackwardBug {
  none,
  untransposed,            // the gradient rotated by +phi: the forward rotation, not its transpose
  key_scale_not_inverted,  // keys' gradients scaled by sigma instead of sigma^-1
  passthrough_scaled,      // pass-through gradient R+i scaled like pair i mod R/2
  memory_dropped,          // dk without its M memory rows
  memory_zeroed,           // dk's M memory rows zero
  bf16_accumulation,       // every product and sum rounded to bf16, whatever the dtype
  fp16_accumulation,       // the same in fp16
};

struct Recipe {
  AngleMode angles = AngleMode::fp32;
  Arithmetic arithmetic = Arithmetic::wide;
  PlantedBug bug = PlantedBug::none;
  BackwardBug backward_bug = BackwardBug::none;
  bool plants(PlantedBug b) const { return bug == b; }
};

// cos, sin and the XPOS scale of every pair at one position, as the recipe computes them.
struct PositionTable {
  std::vector<double> cos, sin, scale;
};

// What a recipe computes once per case: the inverse frequencies and XPOS bases
// zeta_j, in the recipe's angle precision (fp32 or fp64 columns).
struct Frequencies {
  std::vector<float> inv_freq32, zeta32;
  std::vector<double> inv_freq64, zeta64;
};
Frequencies frequencies(const Recipe& recipe, const Case& c, DType dtype);

// Computes the table for one position of a query (e = +1) or key (e = -1) row.
PositionTable position_table(const Recipe& recipe, const Frequencies& f, const Case& c, DType dtype,
                             long position, double centre, bool query);
// The same, computing the case's frequencies first.
PositionTable position_table(const Recipe& recipe, const Case& c, DType dtype, long position,
                             double centre, bool query);

// The tables of every row of the last tensor a recipe with a backward pass rotated on
// this thread. The sweep runs a case's backward pass right after its forward pass, on
// the same thread, and the backward pass needs the very same tables (it negates the
// sine), so it takes them from here instead of computing cos, sin and sigma again,
// which is most of a recipe's time. Keyed by everything the tables depend on.
struct TableMemo {
  std::string key;
  std::vector<PositionTable> rows;
};
TableMemo& table_memo(bool query);
std::string table_memo_key(const std::string& candidate, const Case& c, DType dtype);

// One rotated pair in the recipe's arithmetic: (out[a], out[b]) in the dtype.
struct PairOut {
  double a, b;
};
// Inline: both passes call it once per pair.
inline PairOut rotate_pair(const Recipe& recipe, DType dtype, double xa, double xb, double cs, double sn,
                    double scale) {
  if (recipe.arithmetic == Arithmetic::dtype) {
    auto rd = [dtype](double v) { return round_to(dtype, v); };
    return {rd(rd(rd(xa * cs) - rd(xb * sn)) * scale), rd(rd(rd(xb * cs) + rd(xa * sn)) * scale)};
  }
  if (recipe.angles == AngleMode::fp64) {
    return {round_to(dtype, (xa * cs - xb * sn) * scale), round_to(dtype, (xb * cs + xa * sn) * scale)};
  }
  const float fa = static_cast<float>(xa), fb = static_cast<float>(xb);
  const float fc = static_cast<float>(cs), fs = static_cast<float>(sn);
  const float fscale = static_cast<float>(scale);
  const float oa = (fa * fc - fb * fs) * fscale;
  const float ob = (fb * fc + fa * fs) * fscale;
  return {round_to(dtype, oa), round_to(dtype, ob)};
}

class RecipeCandidate : public Candidate {
 public:
  RecipeCandidate(std::string name, std::string description, Recipe recipe)
      : name_(std::move(name)), description_(std::move(description)), recipe_(recipe) {}
  std::string name() const override { return name_; }
  std::string description() const override { return description_; }
  std::unique_ptr<Candidate> fresh() const override {
    return std::make_unique<RecipeCandidate>(name_, description_, recipe_);
  }
  CandidateOutput run(const Case& c, DType dtype, const Tensor& q_in,
                      const Tensor& k_in) override;
  // Every recipe's rows depend on their own positions and the case alone; the stateful
  // ones below (a cache, a stream's history) say otherwise.
  bool rotates_rows() const override { return true; }
  Tensor rotate_rows(const Case& c, DType dtype, const Tensor& rows, bool query, long first_row) override;
  // A recipe whose forward pass plants no bug has the backward pass (recipe_backward.cpp):
  // the forward map transposed, in the same arithmetic, with its planted backward bug.
  bool has_backward() override { return recipe_.bug == PlantedBug::none; }
  CandidateOutput run_backward(const Case& c, DType dtype, const Tensor& q_in, const Tensor& k_in,
                               const Tensor& g_q, const Tensor& g_k) override;

 protected:
  // Where the recipe puts a row and the XPOS centre of a call; decode bugs move them.
  virtual long position_of(const Case& /*c*/, long position) { return position; }
  virtual double centre_of(const Case& /*c*/, double centre) { return centre; }
  // The table for a row; the stale cache overrides it.
  virtual PositionTable table(const Frequencies& f, const Case& c, DType dtype, long position,
                              double centre, bool query);
  const Recipe& recipe() const { return recipe_; }

 private:
  // Rows first_row.. of q (query) or k; keep_tables: for the backward pass (TableMemo).
  Tensor rotate(const Case& c, DType dtype, const Tensor& in, bool query, long first_row, bool keep_tables);
  // The shape error a planted bug raises on the whole case, if any.
  void raise_planted_shape_error(const Case& c) const;
  Tensor backward_rows(const Case& c, DType dtype, const Tensor& g, bool query);
  std::string name_, description_;
  Recipe recipe_;
};

// Keeps the tables of the first case it saw and serves them to every later case.
class StaleCacheCandidate : public RecipeCandidate {
 public:
  StaleCacheCandidate(std::string name, std::string description)
      : RecipeCandidate(std::move(name), std::move(description), Recipe{}) {}
  Execution execution() const override { return Execution::serial; }
  bool rotates_rows() const override { return false; }
  std::unique_ptr<Candidate> fresh() const override {
    return std::make_unique<StaleCacheCandidate>(name(), description());
  }
  bool has_backward() override { return false; }  // a model of a forward bug only

 protected:
  PositionTable table(const Frequencies& f, const Case& c, DType dtype, long position,
                      double centre, bool query) override;

 private:
  std::optional<Case> first_case_;
  std::optional<DType> first_dtype_;
  std::map<std::pair<long, bool>, PositionTable> cache_;
};

// Bugs that live between the calls of a stream (docs/streams.md); correct on a case
// run in one call.
enum class DecodeBug {
  table_at_first_length,  // tables sized at the first call, indexed modulo that length
  cache_without_offset,   // tables cached by call shape: later calls reuse the first's positions
  positions_restart,      // every call counts its positions from 0: the offset is lost
  moving_centre,          // XPOS centre floor((last position + 1) / 2) per call, keys cached rotated
};

// The centre the moving-centre bug uses: half the length up to the call's last position.
inline long half_length_so_far(const Case& call) { return (call.last_position() + 1) / 2; }

class DecodeBugCandidate : public RecipeCandidate {
 public:
  DecodeBugCandidate(std::string name, std::string description, DecodeBug bug)
      : RecipeCandidate(std::move(name), std::move(description), Recipe{}), bug_(bug) {}
  Execution execution() const override { return Execution::serial; }
  bool rotates_rows() const override { return false; }
  std::unique_ptr<Candidate> fresh() const override {
    return std::make_unique<DecodeBugCandidate>(name(), description(), bug_);
  }
  bool has_backward() override { return false; }  // a model of a stream bug only

 protected:
  long position_of(const Case& c, long position) override;
  double centre_of(const Case& c, double centre) override;

 private:
  DecodeBug bug_;
  std::optional<std::pair<long, long>> first_table_;           // first position, length
  std::map<std::pair<long, long>, long> first_of_shape_;       // (N, M) -> first position
};

}  // namespace xposcheck::candidates
