#include "xposcheck/harness/results.hpp"

#include <algorithm>
#include <chrono>
#include <fmt/format.h>
#include <unordered_map>

#include "baseline_detail.hpp"
#include "results_json.hpp"
#include "xposcheck/reference/atomic_file.hpp"

namespace xposcheck {

namespace fs = std::filesystem;
using nlohmann::json;

std::string Record::key() const {
  return candidate + "|" + case_id + "|" + std::string(dtype_name(dtype));
}

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
    return a.dtype < b.dtype;
  });
}

namespace {

json results_to_json(const Results& results) {
  json records = json::array();
  for (const Record& r : results.records) records.push_back(record_to_json(r));
  return {{"schema", "xposcheck-results"}, {"schema_version", kResultsSchemaVersion},
          {"run", run_to_json(results.run)}, {"records", records},
          {"envelopes", envelopes_to_json(compute_envelopes(results))}};
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
  const int version = j.value("schema_version", 0);
  if (version != kResultsSchemaVersion) {
    throw ResultsError(fmt::format("{}: results schema version {} is not supported (this "
                                   "xposcheck reads version {})", file.string(), version,
                                   kResultsSchemaVersion));
  }
  Results results;
  try {
    results.run = run_from_json(j.at("run"));
    for (const json& r : j.at("records")) results.records.push_back(record_from_json(r));
  } catch (const std::exception& e) {
    throw ResultsError(fmt::format("{}: malformed results: {}", file.string(), e.what()));
  }
  return results;
}

ResultsStore::ResultsStore(fs::path file, RunInfo run, std::vector<std::string> case_order)
    : file_(std::move(file)), journal_(file_.string() + ".journal"), case_order_(std::move(case_order)) {
  results_.run = std::move(run);
}

void ResultsStore::resume() {
  std::lock_guard lock(mutex_);
  std::vector<Record> found;
  if (fs::exists(file_)) {
    Results earlier = read_results(file_);
    if (earlier.run.grid_fingerprint != results_.run.grid_fingerprint) {
      throw ResultsError(fmt::format("{}: written for another grid (fingerprint {} , now {}); "
                                     "remove it or choose another --out", file_.string(),
                                     earlier.run.grid_fingerprint, results_.run.grid_fingerprint));
    }
    found = std::move(earlier.records);
  }
  std::ifstream journal(journal_);
  std::string line;
  while (std::getline(journal, line)) {
    try {
      found.push_back(record_from_json(json::parse(line)));
    } catch (const std::exception&) {
      // A line cut short by an interruption: that record is simply run again.
    }
  }
  for (Record& r : found) {
    if (keys_.insert(r.key()).second) results_.records.push_back(std::move(r));
  }
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
  if (!journal_out_.is_open()) {
    if (file_.has_parent_path()) fs::create_directories(file_.parent_path());
    journal_out_.open(journal_, std::ios::app);
    if (!journal_out_) throw ResultsError(fmt::format("cannot write {}", journal_.string()));
  }
  journal_out_ << record_to_json(record).dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
  journal_out_.flush();
  results_.records.push_back(std::move(record));
  if (now_seconds() - last_checkpoint_ > 5.0) checkpoint_locked();
}

void ResultsStore::checkpoint_locked() {
  Results snapshot = results_;
  sort_records(snapshot.records, case_order_);
  write_results(file_, snapshot);
  last_checkpoint_ = now_seconds();
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
