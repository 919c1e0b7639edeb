#pragma once
// The table of known bugs and conventions a failing candidate is tested against.
#include <string>
#include <string_view>
#include <vector>

#include "diagnosis/detail.hpp"

namespace xposcheck::diagnosis {

// What applicability predicates, perturbations and explanations see.
struct Context {
  const Case& c;
  DType dtype;
  const Record& record;
  const Estimates& estimates;
  const std::vector<TensorDecomposition>& parts;
  bool has_outputs = false;    // outputs of the right shapes to score
  bool can_rerun = false;      // a fresh instance of the candidate can be made
  bool stateful = false;
};

struct Hypothesis {
  std::string_view name;
  DiagnosisKind kind = DiagnosisKind::bug;
  std::string_view convention = "";        // for a convention: the name to accept it by
  bool after_model = false;                // tried after the estimate-driven model
  std::string_view grid_setting = "";      // for a convention: the grid's way to ask for it
  // One sentence, a fmt template over the names explanation_arguments() defines.
  std::string_view explanation = "";
  bool (*applies)(const Context&) = nullptr;
  // The convention under which the candidate would be exact, from SPEC's...
  Convention (*perturb)(const Context&, Convention spec) = nullptr;
  // ...or, for a hypothesis that is not a convention, a test of its own.
  HypothesisScore (*test)(const Evidence&, std::string& detail) = nullptr;
  // For a convention: its frame (grid_setting applied), where SPEC's outputs are the
  // candidate's.
  ConventionFrame (*frame)(const Context&) = nullptr;
};

// In priority order: the first hypothesis that fits is the verdict.
const std::vector<Hypothesis>& hypotheses();

// The case with its positions shifted by `shift` (its first key there), the centre
// left to the case's rule.
Case shifted_frame(const Case& c, double shift);

// A layout named with its pairs: "half (j, j+R/2)", "interleaved (2j, 2j+1)".
const char* layout_pairs(Layout l);

// The hypothesis' explanation with this case's numbers.
std::string explain(const Hypothesis& h, const Context& x);

// The estimate-driven hypothesis (fitted_model.cpp): a model whose shifts, centres,
// XPOS scale factors and frequencies are read from the decomposition; when it fits,
// every parameter that differs from SPEC is named.
struct ModelVerdict {
  std::string name;          // "origin", "origin + centre", "origin + centres-differ", ...
  DiagnosisKind kind = DiagnosisKind::bug;
  std::string convention;    // "origin,centre" when only conventions differ
  std::string explanation, grid_setting;
  std::optional<ConventionFrame> frame;  // as Hypothesis::frame, for a convention
  HypothesisScore score;
};
std::optional<ModelVerdict> fit_model(const Evidence& ev, std::vector<HypothesisScore>& tried);

// The tests of hypotheses that are not a perturbed convention (custom_tests.cpp).
// A shape error quoting N and M + N: a table for all key rows used on the query rows.
HypothesisScore test_unsliced_table(const Evidence& ev, std::string& detail);
// k_out with N rows instead of M + N: the memory keys left out.
HypothesisScore test_memory_rows_missing(const Evidence& ev, std::string& detail);
// A fresh instance of the candidate gives different outputs for the same case.
HypothesisScore test_history(const Evidence& ev, std::string& detail);
// Streams: an XPOS centre per call, by each centre rule over the call's own rows.
HypothesisScore test_moving_centre(const Evidence& ev, std::string& detail);
// cos/sin or XPOS scale tables laid out for the other pairing than the rotation's, in
// SPEC's frame or the cache frame, under each centre rule (frame_search.cpp).
HypothesisScore test_tables_other_layout(const Evidence& ev, std::string& detail);
// The memory keys rotated zero times or twice, the rest once, in those frames.
HypothesisScore test_memory_rotations(const Evidence& ev, std::string& detail);
// cos and sin swapped: x sin + r(x) cos, in the same frames.
HypothesisScore test_sin_cos_swapped(const Evidence& ev, std::string& detail);

}  // namespace xposcheck::diagnosis
