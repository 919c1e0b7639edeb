#include "xposcheck/harness/results.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string_view>
#include <fmt/format.h>
#include <unordered_map>

#include "baseline_detail.hpp"
#include "results_json.hpp"
#include "xposcheck/harness/horizon.hpp"
#include "xposcheck/harness/shard.hpp"
#include "xposcheck/reference/atomic_file.hpp"

namespace xposcheck {

namespace fs = std::filesystem;
using nlohmann::json;

std::string record_key(const std::string& candidate, const std::string& case_id, DType dtype, Pass pass) {
  std::string key = candidate + "|" + case_id + "|" + std::string(dtype_name(dtype));
  if (pass != Pass::forward) key.append("|").append(pass_name(pass));
  return key;
}

std::string Record::key() const { return record_key(candidate, case_id, dtype, pass); }

void sort_records(std::vector<Record>& records, const std::vector<std::string>& case_order) {
  std::unordered_map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < case_order.size(); ++i) index.emplace(case_order[i], i);
  auto rank = [&](const Record& r) {
    auto it = index.find(r.case_id);
    return it == index.end() ? case_order.size() : it->second;
  };
  std::stable_sort(records.begin(), records.end(), [&](const Record& a, const Record& b) {
    if (a.candidate != b.candidate) return a.candidate < b.candidate;
    if (rank(a) != rank(b)) return rank(a) < rank(b);
    if (a.case_id != b.case_id) return a.case_id < b.case_id;
    if (a.dtype != b.dtype) return a.dtype < b.dtype;
    return a.pass < b.pass;
  });
}

namespace {

// Per candidate and dtype, as the console states them; read back from the records.
json horizons_to_json(const std::vector<HorizonSummary>& horizons) {
  json out = json::array();
  for (const HorizonSummary& h : horizons) {
    out.push_back({{"candidate", h.candidate}, {"dtype", dtype_name(h.dtype)}, {"threshold", h.threshold},
                   {"near", h.nearest ? json(*h.nearest->near) : json()},
                   {"far", h.nearest ? json(*h.nearest->far) : json()},
                   {"tensor", h.nearest ? h.nearest->tensor : ""}, {"case_id", h.case_id}, {"reach", h.reach},
                   {"read_from", h.read_from}, {"convention_left_out", h.convention_left_out},
                   {"text", describe_horizon_reach(h)}});
  }
  return out;
}

json results_to_json(const Results& results) {
  json records = json::array();
  for (const Record& r : results.records) records.push_back(record_to_json(r));
  return {{"schema", "xposcheck-results"}, {"schema_version", kResultsSchemaVersion},
          {"run", run_to_json(results.run)}, {"records", records},
          {"envelopes", envelopes_to_json(compute_envelopes(results))},
          {"horizons", horizons_to_json(compute_horizons(results))}};
}

// Pretty metadata, then one compact record per line: a large grid stays a few MB
// and a record is still one greppable line.
std::string results_text(const Results& results) {
  json top = results_to_json(results);
  const json records = std::move(top["records"]);
  top.erase("records");
  // Replacing invalid UTF-8 (candidate text is sanitised where it enters, this is a
  // second line of defence) keeps one bad byte from losing the whole file.
  std::string text = top.dump(1, ' ', false, json::error_handler_t::replace);
  text.erase(text.rfind('}'));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  text += ",\n \"records\": [";
  for (std::size_t i = 0; i < records.size(); ++i) {
    text += (i ? ",\n  " : "\n  ") + records[i].dump(-1, ' ', false, json::error_handler_t::replace);
  }
  text += "\n ]\n}\n";
  return text;
}

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

// "" (a whole run), "K/N" or "K1+K2+.../N" (merged shards), each K in 1..N.
void check_run_shard(const std::string& shard) {
  if (shard.empty()) return;
  const std::size_t slash = shard.find('/');
  if (slash == std::string::npos) throw std::invalid_argument(fmt::format("shard '{}' is not K/N", shard));
  std::string_view list = std::string_view(shard).substr(0, slash);
  const std::string count(shard.substr(slash));
  try {
    for (std::size_t plus; (plus = list.find('+')) != std::string_view::npos; list.remove_prefix(plus + 1)) {
      parse_shard(std::string(list.substr(0, plus)) + count);
    }
    parse_shard(std::string(list) + count);
  } catch (const ShardError& e) {
    throw std::invalid_argument(fmt::format("run.shard: {}", e.what()));
  }
}

std::vector<Record> records_from_json(const json& j, const fs::path& file) {
  const json* records = j.contains("records") ? &j.at("records") : nullptr;
  if (!records || !records->is_array()) {
    throw ResultsError(fmt::format("{}: \"records\" must be an array of records", file.string()));
  }
  std::vector<Record> out;
  for (std::size_t i = 0; i < records->size(); ++i) {
    try {
      out.push_back(record_from_json(records->at(i)));
    } catch (const std::exception& e) {
      throw ResultsError(fmt::format("{}: record {}: {}", file.string(), i, e.what()));
    }
  }
  return out;
}

}  // namespace

void write_results(const fs::path& file, const Results& results) {
  if (file.has_parent_path()) fs::create_directories(file.parent_path());
  write_atomically(file, results_text(results));
}

Results read_results(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ResultsError(fmt::format("{}: cannot open results file", file.string()));
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    throw ResultsError(fmt::format("{}: not valid JSON: {}", file.string(), e.what()));
  }
  if (!j.is_object() || j.value("schema", "") != "xposcheck-results") {
    throw ResultsError(fmt::format("{}: not an xposcheck results file (no \"schema\": "
                                   "\"xposcheck-results\")", file.string()));
  }
  const json& version = j.contains("schema_version") ? j.at("schema_version") : json(nullptr);
  if (!version.is_number_integer() || version.get<long>() != kResultsSchemaVersion) {
    throw ResultsError(fmt::format("{}: results schema_version {} is not supported (this "
                                   "xposcheck reads version {})", file.string(), version.dump(),
                                   kResultsSchemaVersion));
  }
  Results results;
  try {
    results.run = run_from_json(j.at("run"));
    check_run_shard(results.run.shard);
  } catch (const std::exception& e) {
    throw ResultsError(fmt::format("{}: malformed run: {}", file.string(), e.what()));
  }
  results.records = records_from_json(j, file);
  return results;
}

ResultsStore::ResultsStore(fs::path file, RunInfo run, std::vector<std::string> case_order)
    : file_(std::move(file)), journal_(file_.string() + ".journal"), case_order_(std::move(case_order)) {
  results_.run = std::move(run);
}

void ResultsStore::check_resumable(const RunInfo& earlier, const std::string& source) const {
  const std::vector<std::string> diffs = resume_differences(earlier, results_.run);
  if (diffs.empty()) return;
  std::string list;
  for (const std::string& d : diffs) list += (list.empty() ? "" : "; ") + d;
  throw ResultsError(fmt::format("cannot resume {}: {}; remove it or choose another --out", source, list));
}

void ResultsStore::resume() {
  std::lock_guard lock(mutex_);
  std::vector<Record> found;
  if (fs::exists(file_)) {
    Results earlier = read_results(file_);
    check_resumable(earlier.run, file_.string());
    found = std::move(earlier.records);
  }
  for (Record& r : read_journal()) found.push_back(std::move(r));
  for (Record& r : found) {
    stamp_horizon(r);
    if (keys_.insert(r.key()).second) results_.records.push_back(std::move(r));
  }
}

// The horizon is a function of the curves and this run's threshold: records resumed
// from a run with another --horizon are read again at this one.
void ResultsStore::stamp_horizon(Record& r) const {
  if (results_.run.horizon_threshold > 0) r.horizon = record_horizon(r, results_.run.horizon_threshold);
}

// The journal's first line names the run that wrote it; lines of a journal without
// it, or of another run, are never merged.
std::vector<Record> ResultsStore::read_journal() {
  std::ifstream journal(journal_);
  std::string line;
  if (!std::getline(journal, line)) return {};
  json header;
  try {
    header = json::parse(line).at("journal_of");
  } catch (const std::exception&) {
    return {};  // an older journal: its records are run again
  }
  check_resumable(run_from_json(header), journal_.string());
  journal_continues_ = true;
  std::vector<Record> found;
  while (std::getline(journal, line)) {
    try {
      found.push_back(record_from_json(json::parse(line)));
    } catch (const std::exception&) {
      // A line cut short by an interruption: that record is simply run again.
    }
  }
  return found;
}

bool ResultsStore::done(const std::string& key) const {
  std::lock_guard lock(mutex_);
  return keys_.count(key) > 0;
}

std::size_t ResultsStore::size() const {
  std::lock_guard lock(mutex_);
  return results_.records.size();
}

void ResultsStore::add(Record record) {
  std::lock_guard lock(mutex_);
  if (!keys_.insert(record.key()).second) return;
  stamp_horizon(record);
  if (!journal_out_.is_open()) {
    if (file_.has_parent_path()) fs::create_directories(file_.parent_path());
    journal_out_.open(journal_, journal_continues_ ? std::ios::app : std::ios::trunc);
    if (!journal_out_) throw ResultsError(fmt::format("cannot write {}", journal_.string()));
    if (!journal_continues_) journal_out_ << json{{"journal_of", run_to_json(results_.run)}}.dump() << '\n';
  }
  journal_out_ << record_to_json(record).dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
  journal_out_.flush();
  results_.records.push_back(std::move(record));
  if (now_seconds() - last_checkpoint_ > checkpoint_interval_s_) checkpoint_locked();
}

// The journal already keeps every record; the checkpoint makes the results file
// readable mid-run. It rewrites all records so far, so its cost grows with the run:
// spaced to take at most a twentieth of the time, and never more often than 5 s.
void ResultsStore::checkpoint_locked() {
  const double start = now_seconds();
  Results snapshot = results_;
  sort_records(snapshot.records, case_order_);
  write_results(file_, snapshot);
  last_checkpoint_ = now_seconds();
  checkpoint_interval_s_ = std::max(5.0, 20.0 * (last_checkpoint_ - start));
}

Results ResultsStore::finish() {
  std::lock_guard lock(mutex_);
  sort_records(results_.records, case_order_);
  write_results(file_, results_);
  if (journal_out_.is_open()) journal_out_.close();
  std::error_code ec;
  fs::remove(journal_, ec);
  return results_;
}

}  // namespace xposcheck
