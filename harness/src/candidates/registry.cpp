#include <algorithm>

#include "candidates/recipe.hpp"
#include "candidates/sloppy.hpp"
#include "xposcheck/harness/builtin_candidates.hpp"

namespace xposcheck {
namespace {

using candidates::AngleMode;
using candidates::Arithmetic;
using candidates::BackwardBug;
using candidates::PlantedBug;
using candidates::Recipe;

struct Entry {
  CandidateInfo info;
  Recipe recipe;
  bool stale_cache = false;  // keeps the first case's tables (StaleCacheCandidate)
  bool sloppy = false;       // fast trig, dtype arithmetic (SloppyCandidate)
  std::optional<candidates::DecodeBug> decode_bug = std::nullopt;  // DecodeBugCandidate
};

const std::vector<Entry>& entries() {
  static const std::vector<Entry> table = {
      {{"fp32-angles", "angles p*omega in fp32, math in fp32, one rounding to the dtype", true},
       Recipe{}},
      {{"fp64-angles", "angles, trig and scale in fp64, one rounding to the dtype", true},
       Recipe{.angles = AngleMode::fp64}},
      {{"native-dtype",
        "fp32 angles; cos/sin/scale rounded to the dtype, every product and sum in the dtype",
        true},
       Recipe{.arithmetic = Arithmetic::dtype}},
      {{"fp32-angles-sloppy",
        "DRIFT FIXTURE: correct but sloppier (dtype arithmetic, cos/sin truncated to 2^-22 like "
        "fast GPU intrinsics); within tolerance, errors clearly above fp32-angles'",
        true},
       Recipe{},
       false,
       true},
      {{"unsliced-scale",
        "BUG: XPOS scale built for M+N rows applied to the N query rows (x-transformers)", false, "unsliced-scale"},
       Recipe{.bug = PlantedBug::unsliced_scale}},
      {{"positions-from-zero", "BUG: key positions 0..M+N-1, memory offset missing", false, "memory-offset-missing"},
       Recipe{.bug = PlantedBug::positions_from_zero}},
      {{"swapped-qk-scale", "BUG: queries scaled by sigma^-1 and keys by sigma", false, "swapped-qk-scale"},
       Recipe{.bug = PlantedBug::swapped_qk_scale}},
      {{"wrong-layout", "BUG: pairs features with the other layout (half <-> interleaved)", false, "wrong-layout"},
       Recipe{.bug = PlantedBug::wrong_layout}},
      {{"angles-in-dtype", "BUG: p*omega computed in the dtype (bf16/fp16) before cos/sin", false, "angles-in-dtype"},
       Recipe{.angles = AngleMode::dtype}},
      {{"positions-in-dtype",
        "BUG: the position index rounded to the dtype (bf16/fp16) before the angles and XPOS power "
        "are formed; fp32 unchanged", false, "positions-in-dtype"},
       Recipe{.bug = PlantedBug::positions_in_dtype}},
      {{"stale-cache",
        "BUG: cos/sin/scale tables cached from the first case seen: results depend on call order",
        false, "history-dependence"},
       Recipe{},
       true},
      {{"centers-differ", "BUG: queries centred on the N query rows, keys on the M+N key rows",
        false, "centres-differ"},
       Recipe{.bug = PlantedBug::centres_differ}},
      {{"reversed-rotation", "BUG: rotates by -phi (sin with the wrong sign)", false, "reversed-rotation"},
       Recipe{.bug = PlantedBug::reversed_rotation}},
      {{"scale-on-passthrough",
        "BUG: XPOS scale also applied to the pass-through features R..D-1", false, "scale-on-passthrough"},
       Recipe{.bug = PlantedBug::scale_on_passthrough}},
      {{"interpolation-missing", "BUG: position interpolation factor alpha ignored", false, "interpolation-missing"},
       Recipe{.bug = PlantedBug::ignore_interpolation}},
      {{"ntk-exponent", "BUG: NTK base theta * f instead of theta * f^(R/(R-2))", false, "ntk-exponent"},
       Recipe{.bug = PlantedBug::ntk_plain_factor}},
      {{"odd-centre",
        "CONVENTION: q and k centred at N/2 by true division, not floor(N/2) (odd N); logits match SPEC, "
        "elementwise outputs do not",
        false, "centre-unrounded"},
       Recipe{.bug = PlantedBug::centre_unrounded}},
      {{"torchscale-centre",
        "CONVENTION: q and k centred on the whole key range, ceil((M+N)/2) from the first key "
        "(torchscale); "
        "logits match SPEC, elementwise outputs do not",
        false, "centre-key-range"},
       Recipe{.bug = PlantedBug::centre_on_key_range}},
      {{"random-garbage", "BUG: seeded random outputs of the right shape", false, "unexplained"},
       Recipe{.bug = PlantedBug::random_outputs}},
      {{"table-at-first-length",
        "BUG (streams): cos/sin/scale tables sized at the first call's rows and indexed modulo "
        "that length by later calls", false, "table-at-first-length", BugScope::streams},
       Recipe{}, false, false, candidates::DecodeBug::table_at_first_length},
      {{"cache-without-offset",
        "BUG (streams): tables cached by call length without the offset: every later call of "
        "that length gets the first one's positions (rotary-embedding-torch #11)",
        false, "cache-without-offset", BugScope::streams},
       Recipe{}, false, false, candidates::DecodeBug::cache_without_offset},
      {{"positions-restart",
        "BUG (streams): every call counts its positions from 0: the decode offset is lost "
        "(mlx-lm #1699)", false, "positions-restart", BugScope::streams},
       Recipe{}, false, false, candidates::DecodeBug::positions_restart},
      {{"moving-centre",
        "BUG (streams): the XPOS centre at half the length so far, floor((last position + 1) / 2), "
        "recomputed by every call while earlier keys stay "
        "cached with theirs: later logits are rescaled", false, "centre-moves", BugScope::streams},
       Recipe{}, false, false, candidates::DecodeBug::moving_centre},
      {{"packed-positions-continue",
        "BUG (packed batches): positions run on across the sequences of a packed batch instead of "
        "restarting at every boundary (Megatron-LM #5243: [0, 3, 4, 7] for [0, 3, 0, 3])",
        false, "packed-positions-continue", BugScope::packed},
       Recipe{.bug = PlantedBug::packed_positions_continue}},
      // Correct forward passes with a backward bug: only their backward records fail.
      // The backward diagnosis knows one hypothesis (docs/diagnosis.md).
      {{"backward-untransposed", "BACKWARD BUG: the gradient rotated by +phi, the rotation not transposed",
        false, "", BugScope::any, "untransposed-rotation"},
       Recipe{.backward_bug = BackwardBug::untransposed}},
      {{"backward-key-scale", "BACKWARD BUG: keys' gradients scaled by sigma, the XPOS scale not inverted",
        false, "", BugScope::any, "unexplained"},
       Recipe{.backward_bug = BackwardBug::key_scale_not_inverted}},
      {{"backward-passthrough-scaled", "BACKWARD BUG: the pass-through features' gradient scaled by sigma",
        false, "", BugScope::any, "unexplained"},
       Recipe{.backward_bug = BackwardBug::passthrough_scaled}},
      {{"backward-memory-dropped", "BACKWARD BUG: dk without the M memory rows", false, "", BugScope::any, "unexplained"},
       Recipe{.backward_bug = BackwardBug::memory_dropped}},
      {{"backward-memory-zeroed", "BACKWARD BUG: the memory rows' gradient zeroed", false, "", BugScope::any, "unexplained"},
       Recipe{.backward_bug = BackwardBug::memory_zeroed}},
      {{"backward-bf16-accumulation", "BACKWARD BUG: gradients accumulated in bf16 whatever the dtype",
        false, "", BugScope::any, "unexplained"},
       Recipe{.backward_bug = BackwardBug::bf16_accumulation}},
      {{"backward-fp16-accumulation", "BACKWARD BUG: gradients accumulated in fp16 whatever the dtype",
        false, "", BugScope::any, "unexplained"},
       Recipe{.backward_bug = BackwardBug::fp16_accumulation}},
  };
  return table;
}

}  // namespace

const std::vector<CandidateInfo>& builtin_candidates() {
  static const std::vector<CandidateInfo> infos = [] {
    std::vector<CandidateInfo> v;
    for (const Entry& e : entries()) v.push_back(e.info);
    return v;
  }();
  return infos;
}

std::vector<std::string> correct_builtin_names() {
  std::vector<std::string> names;
  for (const CandidateInfo& info : builtin_candidates()) {
    if (info.correct) names.push_back(info.name);
  }
  return names;
}

std::unique_ptr<Candidate> make_builtin(std::string_view name) {
  const auto& all = entries();
  auto it = std::find_if(all.begin(), all.end(), [&](const Entry& e) { return e.info.name == name; });
  if (it == all.end()) return nullptr;
  if (it->stale_cache) {
    return std::make_unique<candidates::StaleCacheCandidate>(it->info.name, it->info.description);
  }
  if (it->decode_bug) {
    return std::make_unique<candidates::DecodeBugCandidate>(it->info.name, it->info.description,
                                                            *it->decode_bug);
  }
  if (it->sloppy) return std::make_unique<candidates::SloppyCandidate>(it->info.name, it->info.description);
  return std::make_unique<candidates::RecipeCandidate>(it->info.name, it->info.description,
                                                       it->recipe);
}

}  // namespace xposcheck
