#include "diagnosis/stream_frames.hpp"

#include <cmath>

namespace xposcheck::diagnosis {
namespace {

long call_of(const Case& c, bool key, long row) {
  return key ? c.call_of_key_row(row) : c.call_of_query_row(row);
}

long true_position(const Case& c, bool key, long row) {
  return key ? c.key_position(row) : c.query_position(row);
}

template <CentreRule Rule>
RowFrame centre_by_call(const Case& c, bool key, long row) {
  const Case call = c.stream_call(call_of(c, key, row));
  return {static_cast<double>(true_position(c, key, row)), static_cast<double>(call.centre_by(Rule))};
}

}  // namespace

RowFrame table_at_first_length(const Case& c, bool key, long row) {
  const Case first = c.stream_call(0);
  const long start = first.first_key_position(), length = first.key_rows();
  const long p = true_position(c, key, row);
  return {static_cast<double>(start + ((p - start) % length + length) % length), std::nullopt};
}

RowFrame cache_without_offset(const Case& c, bool key, long row) {
  const long i = call_of(c, key, row);
  const Case call = c.stream_call(i);
  const Case prefill = c.stream_call(0);
  const bool like_prefill = prefill.seq_len == call.seq_len && prefill.mem_len == call.mem_len;
  const Case first = c.stream_call(like_prefill ? 0 : 1);
  return {static_cast<double>(true_position(c, key, row) - call.first_key_position() + first.first_key_position()), std::nullopt};
}

RowFrame positions_restart(const Case& c, bool key, long row) {
  const Case call = c.stream_call(call_of(c, key, row));
  return {static_cast<double>(true_position(c, key, row) - call.first_query_position()), std::nullopt};
}

RowFrame centre_at_half_length(const Case& c, bool key, long row) {
  const Case call = c.stream_call(call_of(c, key, row));
  return {static_cast<double>(true_position(c, key, row)), std::floor((call.last_position() + 1) / 2.0)};
}

RowFrame centre_at_half_length_up(const Case& c, bool key, long row) {
  const Case call = c.stream_call(call_of(c, key, row));
  return {static_cast<double>(true_position(c, key, row)), std::ceil((call.last_position() + 1) / 2.0)};
}

RowFrameRule moving_centre(CentreRule rule) {
  switch (rule) {
    case CentreRule::queries_floor: return centre_by_call<CentreRule::queries_floor>;
    case CentreRule::queries_ceil: return centre_by_call<CentreRule::queries_ceil>;
    case CentreRule::keys_floor: return centre_by_call<CentreRule::keys_floor>;
    case CentreRule::keys_ceil: return centre_by_call<CentreRule::keys_ceil>;
  }
  return centre_by_call<CentreRule::queries_floor>;
}

}  // namespace xposcheck::diagnosis
