#pragma once
// The results of a sweep: run metadata plus one record per (candidate, case, dtype),
// stored as schema-versioned JSON (docs/results-schema.md).
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "xposcheck/cases/tolerance_spec.hpp"
#include "xposcheck/harness/record.hpp"

namespace xposcheck {

inline constexpr int kResultsSchemaVersion = 1;

struct RunInfo {
  std::string tool_version;
  std::string git_commit;         // of the xposcheck source tree, when known
  std::string grid_name;
  std::string grid_source;
  std::string grid_fingerprint;
  std::vector<std::string> candidates;
  std::vector<std::string> dtypes;
  std::map<std::string, ToleranceSpec> tolerance;  // resolved, per dtype name
  std::string machine;            // host name, cores
  std::string started_at;         // UTC, ISO 8601
  std::string shard;              // "K/N" or ""
  // What decides the records besides the grid and tolerance: a resumed run must match.
  std::vector<std::string> accept_conventions;  // --accept-convention
  std::size_t logit_rows = 0;                   // --logit-rows
  // Per external candidate's name, what its code is: its command or library and a
  // digest of the files it names (absent in older files, and for built-ins).
  std::map<std::string, std::string> candidate_code;
  // --horizon: every record's accuracy horizon is read at this relative error (0: none,
  // as in files written before horizons). Information only, so a resume may change it.
  double horizon_threshold = 0;
};

// Why records of `earlier` cannot be kept by a run `now`: one phrase per difference in
// grid, candidates (names and code), dtypes, resolved tolerance, conventions, logit rows
// or shard
// ("its run used --base-ulps 8 (fp32), this one 2"); empty when they match.
std::vector<std::string> resume_differences(const RunInfo& earlier, const RunInfo& now);

struct Results {
  RunInfo run;
  std::vector<Record> records;    // canonical order: see sort_records
};

struct ResultsError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Canonical order: candidate, then the grid's case order (by case index), then dtype.
void sort_records(std::vector<Record>& records, const std::vector<std::string>& case_order);

// Written atomically (write_atomically). Throws FileWriteError naming the file.
void write_results(const std::filesystem::path& file, const Results& results);
Results read_results(const std::filesystem::path& file);

// Appends each finished record to "<results>.journal" (JSON Lines, flushed per record)
// and rewrites the results file atomically now and then, so an interrupted sweep
// loses nothing it finished. Thread-safe.
class ResultsStore {
 public:
  ResultsStore(std::filesystem::path file, RunInfo run, std::vector<std::string> case_order);
  // Loads records of an earlier, interrupted or finished run with the same settings
  // (results file and journal); throws ResultsError saying what differs otherwise.
  void resume();
  bool done(const std::string& record_key) const;
  void add(Record record);
  // Final atomic write in canonical order; removes the journal.
  Results finish();
  std::size_t size() const;

 private:
  void checkpoint_locked();
  void stamp_horizon(Record& r) const;
  void check_resumable(const RunInfo& earlier, const std::string& source) const;
  std::vector<Record> read_journal();
  bool journal_continues_ = false;  // the journal's header matches: append to it
  std::filesystem::path file_, journal_;
  Results results_;
  std::vector<std::string> case_order_;
  std::set<std::string> keys_;
  std::ofstream journal_out_;
  mutable std::mutex mutex_;
  double last_checkpoint_ = 0;
  double checkpoint_interval_s_ = 5.0;
};

}  // namespace xposcheck
