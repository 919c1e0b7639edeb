#pragma once
// The one interface every candidate implements: given a case, a dtype and inputs in
// that dtype, return q_out and k_out (each with its shape and dtype), or fail. A
// candidate may also implement the backward pass: given upstream gradients, return
// dq and dk (in the same two fields).
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "xposcheck/reference/pass.hpp"
#include "xposcheck/reference/case.hpp"
#include "xposcheck/reference/dtype.hpp"
#include "xposcheck/reference/tensor.hpp"

namespace xposcheck {

// A long case's outputs left where the candidate wrote them (docs/long-context.md),
// read a block of rows at a time.
class OutputRows {
 public:
  virtual ~OutputRows() = default;
  // Rows first..first+count-1 of q_out (query) or k_out into out, laid out
  // [batch * heads][count][D]; a message saying why when they cannot be read.
  virtual std::optional<std::string> read(bool query, long first, long count, double* out) const = 0;
};

struct CandidateOutput {
  Tensor q_out;            // values exactly representable in the dtype named below;
  Tensor k_out;            // dq and dk for a backward job
  std::string q_dtype;     // "fp32", "bf16", "fp16", or whatever the candidate produced
  std::string k_dtype;
  std::optional<double> seconds = std::nullopt;  // this case's own time, when a batch's candidate knows it
  // For a job given input_rows: q_out and k_out hold their shapes alone, the values
  // stay in the files and come from here.
  std::shared_ptr<const OutputRows> rows = nullptr;
};

// Rows first..first+count-1 of q_in (query) or k_in, [batch * heads][count][D].
using InputRows = std::function<void(bool query, long first, long count, double* out)>;

// A candidate raises this for a shape error inside its own computation (the
// x-transformers bug raised "The size of tensor a (1024) must match the size of
// tensor b (1124)"): the harness reports it as DIM_MISMATCH, not CRASH.
struct ShapeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Job {
  const Case* params;
  DType dtype;
  const Tensor* q_in;      // [batch, heads, N, D]
  const Tensor* k_in;      // [batch, heads, M+N, D]
  // This job is the next call of the previous job's stream (docs/streams.md): a
  // candidate that batches keeps the two in one round trip, on one instance.
  bool continues_stream = false;
  Pass pass = Pass::forward;
  const Tensor* g_q = nullptr;  // backward: dL/dq_out, shaped as q_in
  const Tensor* g_k = nullptr;  // backward: dL/dk_out, shaped as k_in
  // A case too long to hold (given only to a candidate that takes_input_rows): q_in and
  // k_in are null and their rows come from here, input_block_rows at a time.
  InputRows input_rows = nullptr;
  long input_block_rows = 0;
};

enum class FailureKind { crash, timeout, shape };

struct CandidateFailure {
  FailureKind kind;
  std::string message;     // exception text, exit status, stderr tail...
  std::optional<double> seconds = std::nullopt;  // this case's own time, when a batch's candidate knows it
};

using Attempt = std::variant<CandidateOutput, CandidateFailure>;

// How the sweep calls a candidate.
enum class Execution {
  parallel,  // run() from many threads at once, the cases in any order
  serial,    // results depend on call order (a cache): one thread, grid order, so
             // that runs stay reproducible
  batched,   // run_batch() with batch_size() jobs at once (processes that start slowly)
};

class Candidate {
 public:
  virtual ~Candidate() = default;
  virtual std::string name() const = 0;
  virtual std::string description() const = 0;

  virtual Execution execution() const { return Execution::parallel; }
  // How many jobs run_batch wants at once; read only for Execution::batched.
  virtual std::size_t batch_size() const { return 1; }
  // Whether run_batch takes a stream (docs/streams.md) as one job on the whole case
  // (Case::stream set) and makes its calls itself, in order; otherwise it gets one job
  // per call. Read for Execution::batched; may become true once the candidate has
  // said so (an external candidate's capabilities).
  virtual bool runs_whole_streams() const { return false; }
  // Batches are coming: a candidate that runs in a process of its own may start it now
  // (a framework's import overlaps the harness's own preparation) and learn its
  // capabilities, so that its first batch already gets whole streams.
  virtual void warm_up() {}
  // The jobs of the next run_batch call, known while the current one runs: a candidate
  // may prepare them now, from another thread (an external one writes their files).
  // Only a hint: run_batch must work whatever was staged.
  virtual void stage_batch(std::span<const Job> /*jobs*/) {}
  // A new instance with no history, for the history-dependence test of a diagnosis;
  // nullptr when the candidate cannot make one.
  virtual std::unique_ptr<Candidate> fresh() const { return nullptr; }
  // One line for humans about how the candidate ran (an external candidate's
  // processes and timings), printed after a sweep; nothing when there is none.
  virtual std::optional<std::string> statistics() const { return std::nullopt; }

  virtual CandidateOutput run(const Case& c, DType dtype, const Tensor& q_in,
                              const Tensor& k_in) = 0;

  // Whether rotate_rows exists: a candidate whose every output row depends on its own
  // input row and the case alone can be called a block of rows at a time, so that a
  // case too long to hold whole is judged in bounded memory (docs/long-context.md).
  virtual bool rotates_rows() const { return false; }
  // Rows first_row..first_row+count-1 of q_out (query) or k_out of case c, from the
  // same rows of q_in or k_in ([batch, heads, count, D]); called only when
  // rotates_rows(). Throws as run() would on the whole case (ShapeError included).
  virtual Tensor rotate_rows(const Case& c, DType dtype, const Tensor& rows, bool query, long first_row);

  // Whether a job may carry input_rows instead of q_in and k_in (a long case judged in
  // blocks); its outputs then come back as CandidateOutput::rows.
  virtual bool takes_input_rows() const { return false; }

  // Whether run_backward exists; a candidate without it gets no backward jobs (no
  // records, not failures). Not const: an external command is asked once, which
  // may mean starting it.
  virtual bool has_backward() { return false; }
  // dq and dk (returned in q_out and k_out) for the upstream gradients g_q and g_k;
  // called only when has_backward(). The default throws.
  virtual CandidateOutput run_backward(const Case& c, DType dtype, const Tensor& q_in,
                                       const Tensor& k_in, const Tensor& g_q, const Tensor& g_k);

  // One attempt per job, in order. The default calls run() or run_backward() and
  // turns exceptions into failures; a candidate never takes the harness down.
  virtual std::vector<Attempt> run_batch(std::span<const Job> jobs);
};

// Runs one job through run() or run_backward(), catching everything.
Attempt attempt(Candidate& candidate, const Job& job);
// Rows of a case through rotate_rows(), catching everything alike.
std::variant<Tensor, CandidateFailure> attempt_rows(Candidate& candidate, const Case& c, DType dtype,
                                                    const Tensor& rows, bool query, long first_row);

}  // namespace xposcheck
