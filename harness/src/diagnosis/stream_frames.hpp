#pragma once
// Where a stream's calls put each row when a decode bug moves them (docs/streams.md):
// the rules the stream hypotheses score, each the mirror of one way of getting the
// calls wrong.
#include "diagnosis/detail.hpp"

namespace xposcheck::diagnosis {

// Tables sized at the first call's key rows, indexed modulo that length.
RowFrame table_at_first_length(const Case& c, bool key, long row);
// Tables cached by call shape: a call gets the positions of the first call shaped alike.
RowFrame cache_without_offset(const Case& c, bool key, long row);
// Every call counts from 0: its first query at position 0, its memory before it.
RowFrame positions_restart(const Case& c, bool key, long row);
// The XPOS centre of each call by a rule over that call's own rows.
RowFrameRule moving_centre(CentreRule rule);
// The XPOS centre of each call at half the length so far, floor or ceil((last + 1) / 2).
RowFrame centre_at_half_length(const Case& c, bool key, long row);
RowFrame centre_at_half_length_up(const Case& c, bool key, long row);

}  // namespace xposcheck::diagnosis
