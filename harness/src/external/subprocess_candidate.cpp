#include "xposcheck/harness/subprocess_candidate.hpp"

#include <algorithm>
#include <chrono>
#include <thread>
#include <optional>
#include <sstream>

#include <fmt/format.h>

#include "external/launch.hpp"
#include "elapsed.hpp"
#include "parallel_for.hpp"
#include "external/protocol.hpp"
#include "xposcheck/harness/candidate_text.hpp"
#include "xposcheck/harness/process.hpp"

namespace xposcheck {
namespace {

using external::BatchEntry;
using external::CaseReport;

using detail::seconds_since;

std::string output_tail(const ProcessResult& p) {
  const std::string err = candidate_text(tail_lines(p.err.text()));
  if (!err.empty()) return "stderr: " + err;
  const std::string out = candidate_text(tail_lines(p.out.text()));
  return out.empty() ? "stderr and stdout were empty" : "stderr empty; stdout: " + out;
}

// Why a case the process did not finish has no result (the process did not time out).
std::string unfinished_message(const ProcessResult& p, const external::CaseFiles& f) {
  if (!p.started) return "cannot start the candidate: " + p.start_error;
  const std::string missing =
      fmt::format("no {} or {} for this case", f.q_out.filename().string(),
                  f.error.filename().string());
  std::string how = p.succeeded() ? "exited normally (status 0) without results for this case"
                                  : "ended (" + p.status() + ") before finishing this case";
  if (p.exit_code == 127 && p.signal == 0) how += " (the shell could not find the command?)";
  return fmt::format("candidate process {} ({}); {}", how, missing, output_tail(p));
}

// Reads what the process left for each case of the round into `results`; returns
// the cases a timeout left unfinished (any other unfinished case is a CRASH).
std::vector<std::size_t> collect(std::span<const Job> jobs, const std::vector<BatchEntry>& entries,
                                 const ProcessResult& p, const external::CaseWatch& watch,
                                 std::vector<std::optional<Attempt>>& results, ExternalStats& s) {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<CaseReport> reports(entries.size());
  parallel_for(entries.size(), [&](std::size_t e) {
    reports[e] = external::read_case(*entries[e].job, entries[e].files);
  });
  std::vector<std::size_t> unfinished;
  for (std::size_t e = 0; e < entries.size(); ++e) {
    const auto i = static_cast<std::size_t>(entries[e].job - jobs.data());
    CaseReport& report = reports[e];
    if (report.compute_s) {
      s.compute_s += *report.compute_s;
      ++s.timed_cases;
    }
    s.candidate_io_s += report.io_s;
    // Its own time: what it reported computing, else from the previous case's end to its own.
    const std::optional<double> seconds = report.compute_s ? report.compute_s : watch.seconds(e);
    std::visit([&](auto& a) { a.seconds = seconds; }, report.attempt);
    if (report.finished) results[i] = std::move(report.attempt);
    else if (p.timed_out) unfinished.push_back(i);
    else results[i] = CandidateFailure{FailureKind::crash, unfinished_message(p, entries[e].files)};
  }
  s.read_s += seconds_since(t0);
  return unfinished;
}

void add(ExternalStats& to, const ExternalStats& s) {
  to.batches += s.batches;
  to.processes += s.processes;
  to.cases += s.cases;
  to.retried_cases += s.retried_cases;
  to.failed_processes += s.failed_processes;
  to.timed_out_processes += s.timed_out_processes;
  to.timed_cases += s.timed_cases;
  to.prestarted += s.prestarted;
  to.served += s.served;
  to.compute_s += s.compute_s;
  to.candidate_io_s += s.candidate_io_s;
  to.process_s += s.process_s;
  to.write_s += s.write_s;
  to.read_s += s.read_s;
  to.staged += s.staged;
}

// What makes a staged batch the one run_batch gets: the same jobs on the same tensors.
struct JobKey {
  const Case* params;
  DType dtype;
  const Tensor *q_in, *k_in, *g_q, *g_k;
  bool continues_stream;
  Pass pass;
  bool operator==(const JobKey&) const = default;
};

std::vector<JobKey> keys_of(std::span<const Job> jobs) {
  std::vector<JobKey> keys;
  for (const Job& j : jobs) keys.push_back({j.params, j.dtype, j.q_in, j.k_in, j.g_q, j.g_k, j.continues_stream, j.pass});
  return keys;
}

}  // namespace

std::vector<std::string> shell_command(const std::string& command) {
  return {"/bin/sh", "-c", command + " \"$@\"", "xposcheck-candidate"};
}

std::string default_command_name(const std::string& command) {
  std::istringstream words(command);
  std::string word, first;
  while (words >> word) {
    if (first.empty() && word.find('=') == std::string::npos) first = word;
    if (word.size() > 3 && word.ends_with(".py")) return std::filesystem::path(word).stem().string();
  }
  return first.empty() ? "external" : std::filesystem::path(first).filename().string();
}

SubprocessCandidate::SubprocessCandidate(SubprocessOptions options) : options_(std::move(options)) {
  if (options_.argv.empty()) throw std::invalid_argument("external candidate without a command");
  if (options_.batch_size == 0) options_.batch_size = 1;
}

// The next batch, written while the one before ran. Once the serving process is done
// with that one, it is handed this batch at once (start_staged_locked): the process
// then has it in hand before the sweep asks for it.
struct SubprocessCandidate::Staged {
  std::vector<JobKey> keys;
  std::unique_ptr<external::Launch> launch;  // launch->process set once handed over
  // The served batch's directory, kept while the process reads where to go next.
  std::unique_ptr<external::Launch> handed_from;
  bool first = false;  // written into the directory of the process warm_up() started
  double write_s = 0;
};

SubprocessCandidate::~SubprocessCandidate() = default;

void SubprocessCandidate::stage_batch(std::span<const Job> jobs) {
  auto staged = std::make_unique<Staged>();
  {
    std::lock_guard lock(mutex_);
    // Only a batch that is one chunk, for a serving process (handed a directory written
    // beforehand) or, before any batch ran, the process started ahead, waiting for its
    // manifest: it starts on the batch as soon as it is written. Not later: another
    // batch may be running, and a process started ahead would run beside it.
    if (jobs.empty() || jobs.size() > options_.batch_size || staged_running_locked()) return;
    if (!batches_begun_ && !serving_ && next_ && !next_->process->exited()) {
      staged->launch = std::move(next_);
      staged->first = true;
    } else if (!serves_) {
      return;
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  try {
    if (!staged->launch) staged->launch = std::make_unique<external::Launch>(options_);
    std::vector<BatchEntry> entries;
    for (std::size_t i = 0; i < jobs.size(); ++i)
      entries.push_back({&jobs[i], external::case_files(staged->launch->dir.path(), i, jobs[i].pass)});
    external::write_batch(staged->launch->dir.path(), options_.name, entries, options_.bf16_inputs,
                          options_.case_timeout_s);
  } catch (const std::exception&) {
    return;  // only a head start: the batch is written again when it runs
  }
  staged->keys = keys_of(jobs);
  staged->write_s = seconds_since(t0);
  std::lock_guard lock(mutex_);
  if (staged_running_locked()) return;  // staged meanwhile, and started: this one is written again later
  staged_ = std::move(staged);
  start_staged_locked();
}

// A staged batch a process has started on stays staged until run_round takes it:
// replacing it would end that process in the middle of the batch (the next batch is
// staged while the sweep is only about to ask for this one).
bool SubprocessCandidate::staged_running_locked() const {
  return staged_ && staged_->launch->process;
}

// A process done with its batch and the next batch written: it starts at once, while
// the sweep may still be judging; run_round then finds it running.
void SubprocessCandidate::start_staged_locked() {
  if (!serving_ || !staged_ || staged_->launch->process || serving_->process->exited()) return;
  try {
    serving_->hand_over(*staged_->launch);
  } catch (const std::exception&) {
    return;  // handed over later, in run_round, or the batch is written again
  }
  staged_->handed_from = std::move(serving_);
}

// The staged batch when it holds exactly these jobs (the whole batch) and a process
// takes it: the serving one (`serving`), or the one that started on it already, whose
// batch before goes to `handed_from`. Otherwise it is dropped (a process running it
// stopped).
std::unique_ptr<external::Launch> SubprocessCandidate::take_staged(std::span<const Job> jobs, bool whole,
                                                                   bool serving,
                                                                   std::unique_ptr<external::Launch>& handed_from,
                                                                   ExternalStats& stats) {
  std::unique_ptr<Staged> staged;
  {
    std::lock_guard lock(mutex_);
    staged = std::move(staged_);
  }
  if (!whole || !staged || staged->keys != keys_of(jobs)) return nullptr;
  if (!serving && !staged->launch->process) return nullptr;
  ++stats.staged;
  stats.write_s += staged->write_s;
  if (staged->first) {
    ++stats.processes;
    ++stats.prestarted;
  } else if (staged->launch->process) {
    ++stats.served;
  }
  handed_from = std::move(staged->handed_from);
  return std::move(staged->launch);
}

std::size_t SubprocessCandidate::batch_size() const {
  return std::max<std::size_t>(2, options_.batch_size);
}

bool SubprocessCandidate::runs_whole_streams() const {
  std::lock_guard lock(mutex_);
  return whole_streams_;
}

void SubprocessCandidate::warm_up() {
  {
    std::lock_guard lock(mutex_);
    if (warmed_up_ || !options_.prestart || next_ || serving_) return;
    warmed_up_ = true;
  }
  std::unique_ptr<external::Launch> launch;
  try {
    launch = std::make_unique<external::Launch>(options_);
    launch->start(options_, /*wait_for_manifest=*/true);
  } catch (const std::exception&) {
    return;  // only an optimisation: the first batch starts its own process
  }
  // A candidate that can wait says so (and what else it can do) as it starts; one that
  // cannot exits for want of a manifest, and the first batch starts afresh.
  constexpr double kProbeLimit_s = 30;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration<double>(std::min(options_.case_timeout_s, kProbeLimit_s));
  const auto& dir = launch->dir.path();
  while (!external::can_wait_for_manifest(dir) && !launch->process->exited() &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::lock_guard lock(mutex_);
  if (!external::can_wait_for_manifest(dir)) {
    prestart_failed_ = true;  // the process goes with the launch
    return;
  }
  can_prestart_ = true;
  serves_ = options_.serve && external::serves_batches(dir);
  whole_streams_ = external::runs_whole_streams(dir);
  if (!backward_) backward_ = external::computes_backward(dir);
  next_ = std::move(launch);
}

std::unique_ptr<Candidate> SubprocessCandidate::fresh() const {
  return std::make_unique<SubprocessCandidate>(options_);
}

namespace {

CandidateOutput output_or_throw(std::vector<Attempt> attempts) {
  if (auto* out = std::get_if<CandidateOutput>(&attempts.at(0))) return std::move(*out);
  const auto& failure = std::get<CandidateFailure>(attempts.at(0));
  if (failure.kind == FailureKind::shape) throw ShapeError(failure.message);
  throw std::runtime_error(failure.message);
}

}  // namespace

CandidateOutput SubprocessCandidate::run_backward(const Case& c, DType dtype, const Tensor& q_in,
                                                  const Tensor& k_in, const Tensor& g_q,
                                                  const Tensor& g_k) {
  const Job job{.params = &c, .dtype = dtype, .q_in = &q_in, .k_in = &k_in, .pass = Pass::backward,
                .g_q = &g_q, .g_k = &g_k};
  return output_or_throw(run_batch(std::span<const Job>(&job, 1)));
}

CandidateOutput SubprocessCandidate::run(const Case& c, DType dtype, const Tensor& q_in,
                                         const Tensor& k_in) {
  const Job job{&c, dtype, &q_in, &k_in};
  return output_or_throw(run_batch(std::span<const Job>(&job, 1)));
}

std::vector<Attempt> SubprocessCandidate::run_batch(std::span<const Job> jobs) {
  {
    std::lock_guard lock(mutex_);
    batches_begun_ = true;
  }
  std::vector<Attempt> attempts;
  attempts.reserve(jobs.size());
  for (std::size_t begin = 0, n = 0; begin < jobs.size(); begin += n) {
    n = std::min(options_.batch_size, jobs.size() - begin);
    // A stream's calls stay in one round trip: one process serves them in order.
    while (begin + n < jobs.size() && jobs[begin + n].continues_stream) ++n;
    for (Attempt& a : run_chunk(jobs.subspan(begin, n))) attempts.push_back(std::move(a));
  }
  return attempts;
}

// The process started ahead for this batch, if it is still waiting for its manifest.
std::unique_ptr<external::Launch> SubprocessCandidate::take_prestarted(ExternalStats& stats) {
  std::lock_guard lock(mutex_);
  std::unique_ptr<external::Launch> launch = std::move(next_);
  if (launch && launch->process->exited()) {
    // It could not wait (or failed to start): stop trying; the batch starts afresh.
    prestart_failed_ = true;
    launch.reset();
  }
  if (launch) ++stats.prestarted;
  return launch;
}

// The process that served the previous batch, if it is still waiting for the next.
std::unique_ptr<external::Launch> SubprocessCandidate::take_serving(ExternalStats& stats) {
  std::lock_guard lock(mutex_);
  std::unique_ptr<external::Launch> launch = std::move(serving_);
  if (launch && launch->process->exited()) launch.reset();
  if (launch) ++stats.served;
  return launch;
}

void SubprocessCandidate::prestart() {
  std::lock_guard lock(mutex_);
  // A serving process waiting for its next batch, or already on it (handed over as
  // soon as it was staged), takes the next batch: a spare would import everything for
  // nothing, beside the process that computes.
  const bool served = serving_ || (staged_ && staged_->launch->process);
  if (!options_.prestart || !can_prestart_ || prestart_failed_ || next_ || served) return;
  try {
    auto launch = std::make_unique<external::Launch>(options_);
    launch->start(options_, /*wait_for_manifest=*/true);
    next_ = std::move(launch);
  } catch (const std::exception&) {
    // Only an optimisation: the next batch starts its own process.
  }
}

// What one process did with the pending cases of a batch.
struct SubprocessCandidate::Round {
  std::vector<std::size_t> unfinished;  // a timeout left them without results
  std::optional<std::size_t> stuck;     // the case that ran past its own allowance
  double limit = 0;                     // the round's time limit
};

// One process over the pending cases: fills their results, except the cases a
// timeout left unfinished. The process is the one that served the previous batch
// when there is one, else one started ahead, else a new one.
SubprocessCandidate::Round SubprocessCandidate::run_round(std::span<const Job> jobs,
                                                          const std::vector<std::size_t>& pending,
                                                          std::vector<std::optional<Attempt>>& results,
                                                          ExternalStats& s) {
  Round round;
  // An empty batch (asking for candidate.json) has one case's allowance.
  round.limit = std::min(options_.case_timeout_s * static_cast<double>(std::max<std::size_t>(1, pending.size())),
                         options_.batch_timeout_s);
  std::unique_ptr<external::Launch> previous = take_serving(s);
  // A serving process takes the batch written ahead when it is this whole batch; it
  // may hold it already (handed over when both were ready).
  std::unique_ptr<external::Launch> handed_from;
  std::unique_ptr<external::Launch> staged =
      take_staged(jobs, pending.size() == jobs.size(), previous != nullptr, handed_from, s);
  const bool running = staged && staged->process;
  const bool written = staged != nullptr;
  std::unique_ptr<external::Launch> launch = previous || running ? std::move(staged) : take_prestarted(s);
  // The next batch's process starts up while this one runs, unless this one will
  // serve it (a spare would import everything for nothing).
  if (!serves_) prestart();
  std::vector<BatchEntry> entries;
  auto t0 = std::chrono::steady_clock::now();
  try {
    if (!launch) launch = std::make_unique<external::Launch>(options_);
    for (std::size_t i : pending)
      entries.push_back({&jobs[i], external::case_files(launch->dir.path(), i, jobs[i].pass)});
    if (!written)
      external::write_batch(launch->dir.path(), options_.name, entries, options_.bf16_inputs,
                            options_.case_timeout_s);
    if (previous) previous->hand_over(*launch);
  } catch (const std::exception& e) {
    for (std::size_t i : pending)
      results[i] = CandidateFailure{FailureKind::crash, std::string("cannot write the batch: ") + e.what()};
    return round;
  }
  s.write_s += seconds_since(t0);

  if (!launch->process) launch->start(options_, /*wait_for_manifest=*/false);
  if (!previous && !running) ++s.processes;
  t0 = std::chrono::steady_clock::now();
  std::vector<external::CaseFiles> files;
  for (const BatchEntry& e : entries) files.push_back(e.files);
  external::CaseWatch watch(std::move(files), options_.case_timeout_s);
  if (serves_ && launch->wait_for_done(round.limit, watch)) {
    // Finished and waiting for the next batch: kept running (unless it is the last),
    // and handed the next batch, when it is written, before this one's outputs are
    // read: the process computes while the harness reads. The directory read stays
    // with serving_ (or the staged batch's handed_from) until the next round.
    s.process_s += seconds_since(t0);
    ProcessResult done = launch->process->result();
    done.reported_done = true;
    {
      std::lock_guard lock(mutex_);
      serving_ = std::move(launch);
      start_staged_locked();
    }
    round.unfinished = collect(jobs, entries, done, watch, results, s);
    return round;
  }
  const ProcessResult p = launch->wait(std::max(0.0, round.limit - seconds_since(t0)), watch);
  s.process_s += seconds_since(t0);
  if (p.timed_out) ++s.timed_out_processes;
  else if (!p.succeeded()) ++s.failed_processes;
  {
    std::lock_guard lock(mutex_);
    if (options_.prestart && external::can_wait_for_manifest(launch->dir.path())) can_prestart_ = true;
    if (options_.serve && external::serves_batches(launch->dir.path())) serves_ = true;
    if (external::runs_whole_streams(launch->dir.path())) whole_streams_ = true;
    if (!backward_) backward_ = external::computes_backward(launch->dir.path());
  }
  if (watch.stuck()) round.stuck = pending[*watch.stuck()];
  round.unfinished = collect(jobs, entries, p, watch, results, s);
  return round;
}

std::vector<Attempt> SubprocessCandidate::run_chunk(std::span<const Job> jobs) {
  std::vector<std::optional<Attempt>> results(jobs.size());
  ExternalStats s;
  s.batches = 1;
  s.cases = jobs.size();
  std::vector<std::size_t> pending(jobs.size());
  for (std::size_t i = 0; i < jobs.size(); ++i) pending[i] = i;
  const auto started = std::chrono::steady_clock::now();

  while (!pending.empty()) {
    const Round round = run_round(jobs, pending, results, s);
    if (round.unfinished.empty()) break;
    // The case it was on gets TIMEOUT: the one that ran past its own allowance, else
    // (the batch's limit) the first unfinished one, cases running in manifest order.
    const std::size_t blamed = round.stuck.value_or(round.unfinished[0]);
    results[blamed] = CandidateFailure{
        FailureKind::timeout,
        round.stuck ? fmt::format("no result within the case's time limit of {:.3g} s (counted from the "
                                  "previous case's result, or the batch's start); the candidate's "
                                  "processes were killed", options_.case_timeout_s)
                    : fmt::format("no result within the batch's time limit of {:.3g} s ({} cases x "
                                  "{:.3g} s, at most {:.3g} s); the candidate's processes were killed "
                                  "while this case was pending",
                                  round.limit, pending.size(), options_.case_timeout_s,
                                  options_.batch_timeout_s)};
    pending = round.unfinished;
    std::erase(pending, blamed);
    s.retried_cases += pending.size();
    // The rest goes on in a fresh process, within the batch's overall limit.
    if (seconds_since(started) < options_.batch_timeout_s) continue;
    for (std::size_t i : pending) {
      results[i] = CandidateFailure{
          FailureKind::timeout,
          fmt::format("not reached: the batch's processes used its whole time limit of {:.3g} s",
                      options_.batch_timeout_s)};
    }
    break;
  }
  prestart();  // after the first batch, or when the serving process did not survive
  {
    std::lock_guard lock(mutex_);
    add(stats_, s);
  }
  std::vector<Attempt> out;
  out.reserve(results.size());
  for (auto& r : results) {
    Attempt a = r ? std::move(*r) : Attempt{CandidateFailure{FailureKind::crash, "no result"}};
    // Messages quote the candidate's output and files: valid UTF-8 from here on.
    if (auto* f = std::get_if<CandidateFailure>(&a)) f->message = candidate_text(f->message);
    out.push_back(std::move(a));
  }
  return out;
}

bool SubprocessCandidate::has_backward() {
  if (options_.backward) return *options_.backward;
  {
    std::lock_guard lock(mutex_);
    if (backward_) return *backward_;
  }
  // An empty batch: the command announces what it can (or says nothing: no).
  std::vector<std::optional<Attempt>> none;
  ExternalStats s;
  run_round({}, {}, none, s);
  prestart();
  std::lock_guard lock(mutex_);
  add(stats_, s);
  return backward_.value_or(false);
}

ExternalStats SubprocessCandidate::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

std::string SubprocessCandidate::stats_summary() const {
  const ExternalStats s = stats();
  return fmt::format(
      "{}: {} cases in {} processes ({} batches served by a running process, {} started "
      "ahead, {} failed, {} timed out, {} cases retried); compute inside the candidate {:.2f} s ({} cases timed), its file I/O {:.2f} s, "
      "waiting for its processes {:.2f} s, inputs written in {:.2f} s, outputs read in {:.2f} s; "
      "{} batches written while the one before ran",
      options_.name, s.cases, s.processes, s.served, s.prestarted, s.failed_processes,
      s.timed_out_processes, s.retried_cases, s.compute_s, s.timed_cases, s.candidate_io_s,
      s.process_s, s.write_s, s.read_s, s.staged);
}

}  // namespace xposcheck
