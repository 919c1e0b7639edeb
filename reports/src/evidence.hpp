#pragma once
// The evidence of SPEC section 3 for one record, as plain text: what the failure
// table, the JUnit failure bodies and the Markdown summary show. Not escaped.
#include <string>
#include <vector>

#include "xposcheck/harness/record.hpp"

namespace xposcheck::evidence {

// One line per fact, most telling first: for DIM_MISMATCH the expected and actual
// shapes and their relation to the case, for TOLERANCE the worst element and its
// coordinates, for NONFINITE the count and first index, for OUT_OF_RANGE the count
// and where the envelope starts, for CRASH/TIMEOUT the message (all of it), for PASS
// the error and margin.
std::vector<std::string> lines(const Record& r);

// lines() joined with newlines.
std::string text(const Record& r);

// "batch 0 head 0 row 94 feature 9 (position -6, pair 9)"
std::string where(const ElementRef& e);

// Compact numbers for tables: "149.7", "1.77e+09", "0".
std::string number(double v);

// Largest max_ulps over the compared tensors (0 when none was compared).
double worst_ulps(const Record& r);

}  // namespace xposcheck::evidence
