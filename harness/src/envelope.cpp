#include "xposcheck/harness/envelope.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <map>
#include <tuple>

namespace xposcheck {
namespace {

bool passes(Outcome o) { return o == Outcome::pass || o == Outcome::drift; }

// The records of one (candidate, dtype, mem_len) reduce to the shortest failing N
// (ties broken by case id, so the answer does not depend on record order) and the
// longest passing N below it.
void add_failure(EnvelopeLimit& limit, const Record& r) {
  const long n = r.params.seq_len;
  if (!limit.all_pass() && (n > limit.first_failing_seq_len ||
                            (n == limit.first_failing_seq_len && r.case_id >= limit.first_failure_case))) {
    return;
  }
  limit.first_failing_seq_len = n;
  limit.first_failure = r.outcome;
  limit.first_failure_case = r.case_id;
}

void add_pass(EnvelopeLimit& limit, const Record& r) {
  const long n = r.params.seq_len;
  if (limit.all_pass() || n < limit.first_failing_seq_len) limit.max_seq_len = std::max(limit.max_seq_len, n);
}

}  // namespace

std::vector<Envelope> compute_envelopes(const Results& results) {
  using Key = std::tuple<std::string, DType>;
  std::map<Key, std::map<long, EnvelopeLimit>> groups;
  // Passing lengths above a failure found later must not count: collect the first
  // failure of each group before the passing lengths.
  for (int phase = 0; phase < 2; ++phase) {
    for (const Record& r : results.records) {
      // The envelope is the forward pass's: gradients share its scales, not its records.
      if (r.pass != Pass::forward || passes(r.outcome) != (phase == 1)) continue;
      EnvelopeLimit& limit = groups[{r.candidate, r.dtype}][r.params.mem_len];
      limit.mem_len = r.params.mem_len;
      if (phase == 0) add_failure(limit, r);
      else add_pass(limit, r);
    }
  }
  std::vector<Envelope> envelopes;
  for (auto& [key, by_mem] : groups) {
    Envelope e{std::get<0>(key), std::get<1>(key), {}};
    for (auto& [mem_len, limit] : by_mem) e.limits.push_back(limit);
    envelopes.push_back(std::move(e));
  }
  return envelopes;
}

std::string describe_limit(const EnvelopeLimit& limit) {
  const std::string reach = limit.max_seq_len > 0 ? fmt::format("N<={}", limit.max_seq_len) : "none";
  if (limit.all_pass()) return fmt::format("M={}: {} (all pass)", limit.mem_len, reach);
  return fmt::format("M={}: {} (N={} {}: {})", limit.mem_len, reach, limit.first_failing_seq_len,
                     limit.first_failure ? outcome_name(*limit.first_failure) : "?", limit.first_failure_case);
}

std::string describe_envelope(const Envelope& envelope) {
  std::string line = fmt::format("envelope {} {}:", envelope.candidate, dtype_name(envelope.dtype));
  const char* separator = " ";
  for (const EnvelopeLimit& limit : envelope.limits) {
    line += separator + describe_limit(limit);
    separator = ", ";
  }
  return line;
}

}  // namespace xposcheck
