#pragma once
// The parameters of one rotary XPOS case (SPEC section 1) and their validation.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "xposcheck/reference/tensor.hpp"

namespace xposcheck {

enum class Layout { half, interleaved };
std::string_view layout_name(Layout l);
Layout other_layout(Layout l);  // the pairing a case does not ask for
std::optional<Layout> parse_layout(std::string_view name);

// How the XPOS centre follows from the positions when the case does not give one: the
// middle of the query positions or of the key positions, rounded down or up. Code
// written in the cache frame centres on its own range (torchscale: the key range
// rounded up), and SPEC's floor(N/2) is the middle of the queries rounded down.
enum class CentreRule { queries_floor, queries_ceil, keys_floor, keys_ceil };
std::string_view centre_rule_name(CentreRule r);  // "queries-floor", ...
std::optional<CentreRule> parse_centre_rule(std::string_view name);

// Thrown for a parameter outside its valid range; the message names the parameter,
// the value and the valid range.
struct InvalidParameter : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// A stream (docs/streams.md): the case's N query rows arrive as a prefill of `prefill`
// rows (with the M memory rows), then steps of `step_rows` rows each, one call per step
// with only its new rows, the way a decoder with a KV cache runs.
struct StreamShape {
  long prefill = 1;    // >= 1, < N
  long step_rows = 1;  // k >= 1; (N - prefill) is a multiple of k
  bool operator==(const StreamShape&) const = default;
};

// Positions given row by row (docs/grids.md), any integers: key row n at keys[n],
// query row m at keys[M + m] (the queries are the last N keys, as always).
struct PositionList {
  std::vector<long> keys;
  long lowest = 0, highest = 0;              // over every row
  long lowest_query = 0, highest_query = 0;  // over the query rows
  // Fills the ranges; the queries are the last `queries` rows.
  static std::shared_ptr<const PositionList> of(std::vector<long> keys, long queries);
};

// A packed batch (docs/streams.md, "Packed batches"): several sequences of different
// lengths in one tensor, flash-attention's varlen layout. The query tensor holds every
// sequence's N_i rows one after the other, the key tensor every sequence's M_i memory
// rows followed by its N_i rows; each sequence has its own positions and XPOS centre.
struct PackedSequence {
  long seq_len = 1;                     // N_i >= 1
  long mem_len = 0;                     // M_i >= 0
  std::optional<long> first_position;   // its key row 0; default the case's frame, per sequence
  std::optional<long> center;           // default the case's centre rule on this sequence
  bool operator==(const PackedSequence&) const = default;
};

struct PackedBatch {
  std::vector<PackedSequence> sequences;
  // cu_seqlens: sequence i's query rows are first_query_row[i] .. first_query_row[i+1]-1,
  // its key rows first_key_row[i] .. first_key_row[i+1]-1 (S + 1 entries each).
  std::vector<long> first_query_row, first_key_row;
  static std::shared_ptr<const PackedBatch> of(std::vector<PackedSequence> sequences);
  long count() const { return static_cast<long>(sequences.size()); }
  long sequence_of_query_row(long m) const;
  long sequence_of_key_row(long n) const;
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
  std::optional<long> center;           // c: an explicit centre, else centre_rule's
  CentreRule centre_rule = CentreRule::queries_floor;
  // The frame (SPEC section 1, "Frames"): the position of key row 0. The default -M is
  // the segment frame (queries at 0..N-1); 0 is the cache frame (keys at 0..M+N-1).
  std::optional<long> first_position;
  long batch = 1;                       // >= 1
  long heads = 1;                       // >= 1
  std::optional<StreamShape> stream;    // one call for the whole case when not set
  std::shared_ptr<const PositionList> positions;  // explicit positions; none: the frame's range
  std::shared_ptr<const PackedBatch> packed;       // a packed batch: N and M are the sums

  long rotary() const { return rotary_dim.value_or(head_dim); }
  long pairs() const { return rotary() / 2; }
  long key_rows() const { return mem_len + seq_len; }
  // Position of key row n and query row m: keys first_key_position()..last_position(),
  // queries the last N of them.
  long first_key_position() const {
    if (packed) return key_position(0);
    return positions ? positions->keys.front() : first_position.value_or(-mem_len);
  }
  long first_query_position() const { return query_position(0); }
  long last_position() const { return key_position(key_rows() - 1); }
  long query_position(long m) const { return packed ? packed_query_position(m) : key_position(mem_len + m); }
  long key_position(long n) const {
    if (packed) return packed_key_position(n);
    return positions ? positions->keys[static_cast<std::size_t>(n)] : first_key_position() + n;
  }
  // The range every row's position lies in: first..last key position, or the explicit
  // positions' (or the packed sequences') smallest and largest.
  long lowest_position() const;
  long highest_position() const;
  // The centre the rule gives (or the explicit one); default rule: floor(N/2) in the
  // segment frame.
  long centre_by(CentreRule rule) const;
  long centre() const { return center ? *center : centre_by(centre_rule); }
  // The case with every position shifted by `shift` and the centre moved along: the
  // same logits, other elementwise outputs (the frame conventions of SPEC).
  // Feature indices (a, b) of rotated pair j.
  long pair_a(long j) const { return layout == Layout::half ? j : 2 * j; }
  long pair_b(long j) const { return layout == Layout::half ? j + rotary() / 2 : 2 * j + 1; }

  Case shifted(long shift) const;

  // Streams: how many steps follow the prefill, and the case of call i (0: the
  // prefill, i >= 1: step i), a plain case at the call's true positions with the
  // stream's centre given explicitly.
  long stream_steps() const { return stream ? (seq_len - stream->prefill) / stream->step_rows : 0; }
  long stream_calls() const { return stream ? 1 + stream_steps() : 1; }
  Case stream_call(long i) const;
  // Rows of the whole case that call i returns: its queries start at query row
  // call_first_query_row(i), its keys at key row call_first_key_row(i).
  long call_first_query_row(long i) const;
  long call_first_key_row(long i) const { return i == 0 ? 0 : mem_len + call_first_query_row(i); }
  // The call that returns query row m / key row n.
  long call_of_query_row(long m) const;
  long call_of_key_row(long n) const { return call_of_query_row(std::max(0L, n - mem_len)); }

  // Packed batches: sequence i as a case of its own (its rows, its frame, its centre).
  Case sequence_case(long i) const;

  Shape q_shape() const;       // [batch, heads, N, D]
  Shape k_shape() const;       // [batch, heads, M+N, D]
  Shape logits_shape() const;  // [batch, heads, N, M+N]
  std::size_t output_elements() const;  // elements of q_out and k_out together

 private:
  long packed_key_position(long n) const;
  long packed_query_position(long m) const;
};

// Throws InvalidParameter naming the first invalid parameter.
void validate(const Case& c);

// A digest of explicit positions, for ids and fingerprints.
std::uint32_t position_digest(const PositionList& p);
// The same for the sequences of a packed batch.
std::uint32_t packed_digest(const PackedBatch& p);
// "64,17+8,1+100@20": each sequence's N, +M when it has memory, @P when its first key
// position is given (the grid syntax, docs/grids.md).
std::string packed_text(const PackedBatch& p);

// A short, stable, human-readable identifier, e.g. "D128-N1024-M100-R64-interleaved".
// Parameters at their defaults are left out.
std::string case_id(const Case& c);

}  // namespace xposcheck
