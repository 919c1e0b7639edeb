#pragma once
// A candidate that is another program: for each batch of cases the harness writes a
// work directory (manifest.json and the inputs as .npy), runs the command once with
// that directory as its last argument, and reads back each case's outputs or error
// record. The protocol is in docs/protocol.md; python/xposcheck_candidate implements
// the candidate's side of it.
#include <cstddef>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "xposcheck/harness/candidate.hpp"

namespace xposcheck {

// How bf16 inputs are written (NumPy has no bf16 dtype). Outputs may use either.
enum class Bf16Encoding {
  bits,     // '<u2' holding the bf16 bit patterns
  float32,  // '<f4' holding values exactly representable in bf16
};

struct SubprocessOptions {
  std::string name;
  std::string description;
  std::vector<std::string> argv;       // the command; the work directory is appended
  std::size_t batch_size = 32;         // cases per batch (a serving process takes many)
  // Each case's allowance, from the end of the previous case (or the batch's start):
  // a case over it is TIMEOUT, and the rest of the batch goes on in a fresh process.
  double case_timeout_s = 60;
  double batch_timeout_s = 1800;       // a batch's processes together, at most
  double kill_grace_s = 2;             // between SIGTERM and SIGKILL
  Bf16Encoding bf16_inputs = Bf16Encoding::bits;
  std::filesystem::path temp_root;     // empty: $TMPDIR, else /dev/shm with room, else /tmp
  bool keep_work_dirs = false;         // leave them for inspection
  // Start the next batch's process while the harness prepares that batch, once the
  // candidate has said it can wait for its manifest (the Python helper does).
  bool prestart = true;
  // Keep a process that finished its batch for the next one, once the candidate has
  // said it serves batches (the Python helper does): start-up is paid once per sweep.
  bool serve = true;
  std::size_t capture_bytes = 64 * 1024;  // of stdout and stderr, each
  // Whether it has a backward pass, when known beforehand (a plugin's description);
  // unset: the command says so in candidate.json, asked with an empty batch.
  std::optional<bool> backward;
};

// Runs a shell command line: /bin/sh -c 'COMMAND "$@"' with the work directory as $1.
std::vector<std::string> shell_command(const std::string& command);

// A name for a command line without one: the stem of its first *.py word, else of
// its first word ("python3 cands/torch_rope.py" -> "torch_rope").
std::string default_command_name(const std::string& command);

// Where the time goes: the candidate's own compute time as it reports it, against
// the processes' wall time and the harness's file traffic.
struct ExternalStats {
  std::size_t batches = 0, processes = 0, cases = 0;
  std::size_t retried_cases = 0, failed_processes = 0, timed_out_processes = 0;
  std::size_t timed_cases = 0;  // cases that reported compute_s
  std::size_t prestarted = 0;   // processes started ahead of their batch
  std::size_t served = 0;       // batches handed to a process that had finished one
  double compute_s = 0;         // inside the candidate's function
  double candidate_io_s = 0;    // the candidate reading inputs and writing outputs
  double process_s = 0;         // wall time of the candidate's processes
  double write_s = 0;           // writing manifests and inputs
  std::size_t staged = 0;       // batches whose files were written while the one before ran
  double read_s = 0;            // reading and validating outputs
};

namespace external {
struct Launch;
}

class SubprocessCandidate : public Candidate {
 public:
  explicit SubprocessCandidate(SubprocessOptions options);
  ~SubprocessCandidate() override;

  std::string name() const override { return options_.name; }
  std::string description() const override { return options_.description; }
  // Always batched, in batches of at least 2 (run_batch keeps the TIMEOUT outcome,
  // which run() cannot express); batches larger than the configured size are split.
  Execution execution() const override { return Execution::batched; }
  std::size_t batch_size() const override;
  // Once a process has said it runs streams whole (the Python helper does).
  bool runs_whole_streams() const override;
  // A long case's inputs are written and its outputs read a block of rows at a time.
  bool takes_input_rows() const override { return true; }
  // Starts the first batch's process ahead and reads what it says it can do.
  void warm_up() override;
  // A new instance with the same options starts its own processes: no history.
  std::unique_ptr<Candidate> fresh() const override;
  std::optional<std::string> statistics() const override { return stats_summary(); }

  // One case through run_batch; failures are thrown (ShapeError for shape errors).
  CandidateOutput run(const Case& c, DType dtype, const Tensor& q_in,
                      const Tensor& k_in) override;
  std::vector<Attempt> run_batch(std::span<const Job> jobs) override;
  // While a serving process runs this batch, writes the next one's manifest and inputs
  // to its own work directory, handed over as soon as this batch is done (before the
  // next run_batch when the process finishes first). Before the first run_batch, the
  // process warm_up() started takes the batch at once and starts on it.
  void stage_batch(std::span<const Job> jobs) override;
  // Known from the options, from a batch the command ran, or else by handing it an
  // empty batch (the Python helper announces itself in candidate.json).
  bool has_backward() override;
  // One backward job through run_batch, as run() does for a forward one.
  CandidateOutput run_backward(const Case& c, DType dtype, const Tensor& q_in, const Tensor& k_in,
                               const Tensor& g_q, const Tensor& g_k) override;

  ExternalStats stats() const;
  std::string stats_summary() const;  // one line for humans
  const SubprocessOptions& options() const { return options_; }

 private:
  std::vector<Attempt> run_chunk(std::span<const Job> jobs);
  struct Round;
  Round run_round(std::span<const Job> jobs, const std::vector<std::size_t>& pending,
                  std::vector<std::optional<Attempt>>& results, ExternalStats& stats);

  std::unique_ptr<external::Launch> take_prestarted(ExternalStats& stats);
  std::unique_ptr<external::Launch> take_serving(ExternalStats& stats);
  void prestart();

  SubprocessOptions options_;
  mutable std::mutex mutex_;             // guards stats_ and next_
  ExternalStats stats_;
  bool can_prestart_ = false;            // the candidate said it can wait for its manifest
  bool prestart_failed_ = false;         // a prestarted process did not wait: stop trying
  std::unique_ptr<external::Launch> next_;  // prestarted for the next batch
  bool serves_ = false;                     // the candidate said it serves batches
  bool whole_streams_ = false;              // the candidate said it runs streams whole
  bool warmed_up_ = false;                  // warm_up() has started a process once
  bool batches_begun_ = false;              // run_batch has been called
  std::unique_ptr<external::Launch> serving_;  // finished its batch, waiting for the next
  struct Staged;
  std::unique_ptr<Staged> staged_;          // the next batch, written ahead (stage_batch)
  std::unique_ptr<external::Launch> take_staged(std::span<const Job> jobs, bool whole, bool serving,
                                                std::unique_ptr<external::Launch>& handed_from, ExternalStats& stats);
  void start_staged_locked();  // under mutex_
  bool staged_running_locked() const;  // under mutex_
  std::optional<bool> backward_;            // what the candidate said in candidate.json
};

}  // namespace xposcheck
