#pragma once
// Which pass a job runs and a record judges: the forward map (q_out, k_out) or its
// backward pass (dq, dk from upstream gradients, docs/gradients.md). The names are
// spelled here alone on the C++ side (the protocol, grids, results and reports use
// them); python/xposcheck_candidate/names.py spells them for the Python helper.
#include <optional>
#include <string_view>

namespace xposcheck {

enum class Pass { forward, backward };

inline constexpr std::string_view pass_name(Pass p) { return p == Pass::forward ? "forward" : "backward"; }

inline std::optional<Pass> parse_pass(std::string_view name) {
  if (name == pass_name(Pass::forward)) return Pass::forward;
  if (name == pass_name(Pass::backward)) return Pass::backward;
  return std::nullopt;
}

// The names of a pass's two tensors: what a shape or value message calls them.
inline constexpr const char* q_tensor_name(Pass p) { return p == Pass::forward ? "q_out" : "dq"; }
inline constexpr const char* k_tensor_name(Pass p) { return p == Pass::forward ? "k_out" : "dk"; }

}  // namespace xposcheck
