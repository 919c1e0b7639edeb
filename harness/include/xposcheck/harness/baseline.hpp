#pragma once
// Regression baselines (docs/baselines.md): the outcome and error statistics of every
// (candidate, case, dtype) and the safe envelopes of a run, small and stable enough to
// commit; a later run compared with it turns grown errors into DRIFT (SPEC section 3).
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "xposcheck/harness/envelope.hpp"
#include "xposcheck/harness/results.hpp"

namespace xposcheck {

inline constexpr const char* kBaselineSchema = "xposcheck-baseline";
inline constexpr int kBaselineSchemaVersion = 1;

struct BaselineTensor {
  std::string name;                  // "q_out", "k_out", "logits"
  double max_ulps = 0, rms_ulps = 0; // rounded to 4 significant digits
  bool operator==(const BaselineTensor&) const = default;
};

struct BaselineEntry {
  std::string candidate, case_id;
  DType dtype = DType::fp32;
  Outcome outcome = Outcome::pass;
  std::vector<BaselineTensor> tensors;  // the compared tensors, in record order
  Pass pass = Pass::forward;

  std::string key() const;              // as Record::key()
  bool operator==(const BaselineEntry&) const = default;
};

struct Baseline {
  std::string tool_version;
  std::string grid_name, grid_fingerprint;
  std::map<std::string, ToleranceSpec> tolerance;  // per dtype name, as resolved in the run
  std::vector<Envelope> envelopes;
  std::vector<BaselineEntry> entries;              // by candidate, case id, dtype name
};

// A baseline file that cannot be used; what() names the file and the problem.
struct BaselineError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Throws BaselineError for the results of a single shard: a baseline describes a
// whole grid (merge the shards first). DRIFT records are stored as PASS.
Baseline make_baseline(const Results& results);

// The file's exact text: a header, then one envelope limit and one entry per line,
// in a fixed order, so that identical runs give identical bytes.
std::string format_baseline(const Baseline& baseline);
Baseline parse_baseline(const std::string& text, const std::string& source);
void write_baseline(const std::filesystem::path& file, const Baseline& baseline);
Baseline read_baseline(const std::filesystem::path& file);

struct DriftOptions {
  double factor = 2.0;       // an error may grow up to factor x the baseline's...
  double floor_ulps = 1.0;   // ...or by up to this many ulps, whichever is more lenient
  // Compare candidate "now" with the baseline entries of candidate "then" (now -> then).
  std::map<std::string, std::string> baseline_names;
};

struct EnvelopeChange {
  std::string candidate;
  DType dtype = DType::fp32;
  long mem_len = 0;
  long baseline_max = 0, max = 0;   // max_seq_len then and now
  DriftVerdict verdict = DriftVerdict::unchanged;
};

struct DriftReport {
  std::size_t compared = 0;         // records with a baseline entry
  std::size_t regressed = 0, improved = 0, unchanged = 0, new_cases = 0;
  std::size_t missing = 0;          // baseline entries of run candidates without a record
  std::vector<EnvelopeChange> envelope_changes;
  std::vector<std::string> notes;   // why some comparisons were skipped

  // DRIFT records, newly failing cases and shrunken envelopes fail the gate.
  bool gate_failed() const;
};

// Sets every record's drift evidence and turns PASS records whose errors grew into
// DRIFT; earlier drift marks (a resumed run) are cleared first.
DriftReport apply_baseline(Results& results, const Baseline& baseline, const DriftOptions& options = {});

// What a sweep prints after its summary: counts, then the regressed and improved
// records and envelopes (at most `limit` of each kind).
std::string format_drift(const Results& results, const DriftReport& report, std::size_t limit = 20);

struct BaselineDiff {
  std::vector<std::string> lines;   // readable, one change per line
  bool identical = true;            // the two files would have the same bytes
};

// Header, outcome, envelope, new and removed entries, and errors that moved beyond
// the drift options; smaller error changes are counted, not listed.
BaselineDiff diff_baselines(const Baseline& before, const Baseline& after, const DriftOptions& options = {});

}  // namespace xposcheck
