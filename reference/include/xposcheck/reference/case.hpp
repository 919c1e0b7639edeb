#pragma once
// The parameters of one rotary XPOS case (SPEC section 1) and their validation.
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "xposcheck/reference/tensor.hpp"

namespace xposcheck {

enum class Layout { half, interleaved };
std::string_view layout_name(Layout l);
std::optional<Layout> parse_layout(std::string_view name);

// Thrown for a parameter outside its valid range; the message names the parameter,
// the value and the valid range.
struct InvalidParameter : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

struct Case {
  long head_dim = 0;                    // D: even, >= 2
  std::optional<long> rotary_dim;       // R: even, 2 <= R <= D; default D
  double base = 10000.0;                // theta: > 1
  double base_rescale = 1.0;            // f: >= 1; f != 1 needs R > 2
  double interpolation = 1.0;           // alpha: >= 1
  bool xpos = true;
  double scale_base = 512.0;            // B: > 0
  Layout layout = Layout::half;
  long seq_len = 0;                     // N: >= 1
  long mem_len = 0;                     // M: >= 0
  std::optional<long> center;           // c: default floor(N / 2)
  long batch = 1;                       // >= 1
  long heads = 1;                       // >= 1

  long rotary() const { return rotary_dim.value_or(head_dim); }
  long pairs() const { return rotary() / 2; }
  long centre() const { return center.value_or(seq_len / 2); }
  long key_rows() const { return mem_len + seq_len; }
  // Position of query row m and key row n (SPEC section 1).
  long query_position(long m) const { return m; }
  long key_position(long n) const { return n - mem_len; }
  // Feature indices (a, b) of rotated pair j.
  long pair_a(long j) const { return layout == Layout::half ? j : 2 * j; }
  long pair_b(long j) const { return layout == Layout::half ? j + rotary() / 2 : 2 * j + 1; }

  Shape q_shape() const;       // [batch, heads, N, D]
  Shape k_shape() const;       // [batch, heads, M+N, D]
  Shape logits_shape() const;  // [batch, heads, N, M+N]
  std::size_t output_elements() const;  // elements of q_out and k_out together
};

// Throws InvalidParameter naming the first invalid parameter.
void validate(const Case& c);

// A short, stable, human-readable identifier, e.g. "D128-N1024-M100-R64-interleaved".
// Parameters at their defaults are left out.
std::string case_id(const Case& c);

}  // namespace xposcheck
