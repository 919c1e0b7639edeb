#include "prepared.hpp"

#include <chrono>
#include <stdexcept>

#include <fmt/format.h>

#include "blank_record.hpp"
#include "elapsed.hpp"
#include "xposcheck/harness/compare.hpp"
#include "xposcheck/harness/gate.hpp"
#include "xposcheck/harness/packed.hpp"
#include "xposcheck/reference/golden_blocks.hpp"
#include "xposcheck/reference/packed.hpp"

namespace xposcheck::detail {

Job Prepared::whole_job() const {
  if (in_blocks) {
    Job job{&gc->params, dtype, nullptr, nullptr};
    const GridCase* c = gc;
    const DType t = dtype;
    job.input_rows = [c, t](bool query, long first, long count, double* out) {
      generate_rows(c->params, c->seed, t, query, first, count, out);
    };
    job.input_block_rows = in_blocks->block_rows > 0 ? in_blocks->block_rows : golden_block_rows(c->params);
    return job;
  }
  Job job{&gc->params, dtype, &inputs.q, &inputs.k};
  job.pass = pass;
  if (pass == Pass::backward) {
    job.g_q = &upstream.g_q;
    job.g_k = &upstream.g_k;
  }
  return job;
}
Job Prepared::one_call_job() const { return Job{one_call ? &*one_call : &gc->params, dtype, &inputs.q, &inputs.k}; }

namespace {

// A packed batch's sequences, each a case of its own with its rows of the inputs.
void add_parts(Prepared& p) {
  const Case& c = p.gc->params;
  p.part_cases = std::make_shared<std::vector<GridCase>>();
  p.parts = std::make_shared<std::vector<Prepared>>();
  for (long i = 0; i < c.packed->count(); ++i) {
    const Case one = c.sequence_case(i);
    p.part_cases->push_back({p.gc->id + fmt::format("/seq{}", i), one, p.gc->seed});
  }
  for (long i = 0; i < c.packed->count(); ++i) {
    Prepared part;
    part.gc = &(*p.part_cases)[static_cast<std::size_t>(i)];
    part.dtype = p.dtype;
    part.inputs = Inputs{sequence_queries(c, p.inputs.q, i), sequence_keys(c, p.inputs.k, i)};
    part.pass = p.pass;
    if (p.pass == Pass::backward)
      part.upstream = Upstream{sequence_queries(c, p.upstream.g_q, i), sequence_keys(c, p.upstream.g_k, i)};
    p.parts->push_back(std::move(part));
  }
}

}  // namespace

Prepared prepare_inputs(const GridCase& gc, DType dtype, Pass pass, Inputs inputs, double drawn_s) {
  const auto t0 = std::chrono::steady_clock::now();
  Prepared p;
  p.gc = &gc;
  p.dtype = dtype;
  p.inputs = std::move(inputs);
  p.pass = pass;
  // The backward pass of a stream's case is judged as the whole case in one call.
  if (pass == Pass::backward) {
    p.upstream = generate_upstream(gc.params, gc.seed, dtype);
  } else if (gc.params.stream) {
    p.calls = stream_calls(gc.params, p.inputs.q, p.inputs.k);
    p.one_call = gc.params;
    p.one_call->stream.reset();
  }
  if (gc.params.packed) add_parts(p);
  p.inputs_s = drawn_s + seconds_since(t0);
  return p;
}

Prepared prepare_inputs(const GridCase& gc, DType dtype, Pass pass, const Inputs* drawn) {
  const auto t0 = std::chrono::steady_clock::now();
  // Both arms prvalues: the fresh draw is moved, only `drawn` is copied.
  Inputs inputs = drawn ? Inputs(*drawn) : generate_inputs(gc.params, gc.seed, dtype);
  return prepare_inputs(gc, dtype, pass, std::move(inputs), seconds_since(t0));
}

void add_golden(Prepared& p, std::size_t logit_rows) {
  const auto t0 = std::chrono::steady_clock::now();
  if (p.parts) {
    // Judged sequence by sequence: the parts hold the golden outputs.
    for (Prepared& part : *p.parts) add_golden(part, logit_rows);
    p.golden_s += seconds_since(t0);
    return;
  }
  if (p.pass == Pass::backward) {
    GoldenGradients g = golden_gradients_fast(p.gc->params, p.upstream.g_q, p.upstream.g_k);
    p.golden.q_out = std::move(g.dq);
    p.golden.k_out = std::move(g.dk);
  } else {
    GoldenOptions options = judging_golden_options(p.gc->params, logit_rows);
    if (p.calls) {
      // A step's queries see the keys cached so far: the rest of their logits go uncomputed.
      options.rows = stream_logit_rows(p.gc->params, options.max_logit_rows);
      for (long row : options.rows) options.visible_keys.push_back(visible_keys(p.gc->params, row));
    }
    p.golden = golden_fast(p.gc->params, p.inputs.q, p.inputs.k, options);
  }
  p.tables = shared_tables(p.gc->params);
  p.golden_s += seconds_since(t0);
}

Prepared prepare(const GridCase& gc, DType dtype, Pass pass, std::size_t logit_rows) {
  Prepared p = prepare_inputs(gc, dtype, pass);
  add_golden(p, logit_rows);
  return p;
}

namespace {

// Runs the case on a fresh instance of the candidate (the history-dependence
// hypothesis); a candidate that cannot make one skips that hypothesis.
FreshRun fresh_run_of(const Candidate& candidate, const Prepared& p) {
  if (!candidate.fresh()) return {};
  return [&candidate, &p] {
    const auto fresh = candidate.fresh();
    if (p.calls) return run_stream(*fresh, p.gc->params, p.dtype, *p.calls);
    return attempt(*fresh, p.whole_job());
  };
}

// A stream is judged as the whole case with causal logits and one curve bin per
// position, from which each step's verdict is read.
CompareOptions compare_options(const Prepared& p) {
  CompareOptions options;
  if (p.yardstick) options.yardstick = &*p.yardstick;
  options.pass = p.pass;
  if (p.calls) {
    const Case& c = p.gc->params;
    options.curve_bins = stream_curve_bins(c);
    options.visible_keys = [&c](long m) { return visible_keys(c, m); };
  }
  return options;
}

// A packed batch: its shapes as a whole, then every sequence judged (and diagnosed) as
// a case of its own on its rows; positions continuing across sequences are named here,
// where the sequence boundaries are known.
Record judge_packed(const Candidate& candidate, const Prepared& p, const Attempt& attempt, double candidate_s,
                    const Tolerance& tol, const DiagnosisOptions& diagnosis) {
  const Case& c = p.gc->params;
  Record r = blank_record(candidate.name(), *p.gc, p.dtype, p.pass);
  r.timing.inputs_s = p.inputs_s;
  r.timing.golden_s = p.golden_s;
  r.timing.candidate_s = candidate_s;
  const auto t0 = std::chrono::steady_clock::now();
  const auto* output = std::get_if<CandidateOutput>(&attempt);
  if (!output) {
    record_failure(c, std::get<CandidateFailure>(attempt), r);
  } else if (check_output_shapes(c, p.dtype, *output, r, p.pass)) {
    std::vector<Record> parts;
    for (long i = 0; i < c.packed->count(); ++i) {
      const Prepared& part = (*p.parts)[static_cast<std::size_t>(i)];
      const CandidateOutput out = sequence_output(c, *output, i);
      parts.push_back(judge(candidate, part, out, candidate_s, tol, diagnosis));
      if (p.pass == Pass::forward && fails_gate(parts.back())) {
        // Seen alone, such a sequence looks like another frame: judged again without
        // that diagnosis, so that the message tells the bug.
        if (auto d = positions_continue(c, p.dtype, tol, i, part.inputs.q, part.inputs.k, out)) {
          DiagnosisOptions plain = diagnosis;
          plain.enabled = false;
          parts.back() = judge(candidate, part, out, candidate_s, tol, plain);
          attach_diagnosis(parts.back(), std::move(*d), diagnosis);
        }
      }
    }
    merge_sequence_records(c, parts, r);
  }
  r.timing.compare_s = seconds_since(t0);
  return r;
}

// A long case's outputs, left in the candidate's files, judged block by block.
Record judge_rows(const Candidate& candidate, const Prepared& p, const Attempt& attempt, double candidate_s,
                  const Tolerance& tol) {
  if (const auto* failure = std::get_if<CandidateFailure>(&attempt)) {
    Record r = blank_record(candidate.name(), *p.gc, p.dtype, p.pass);
    record_failure(p.gc->params, *failure, r);
    r.timing.candidate_s = candidate_s;
    return r;
  }
  Record r = judge_output_in_blocks(candidate.name(), std::get<CandidateOutput>(attempt), *p.gc, p.dtype, tol,
                                    *p.in_blocks, p.yardstick ? &*p.yardstick : nullptr);
  r.timing.candidate_s = candidate_s;
  return r;
}

}  // namespace

Record judge(const Candidate& candidate, const Prepared& p, const Attempt& attempt,
             double candidate_s, const Tolerance& tol, const DiagnosisOptions& diagnosis,
             const Attempt* one_pass) {
  if (p.in_blocks) return judge_rows(candidate, p, attempt, candidate_s, tol);
  if (p.parts) return judge_packed(candidate, p, attempt, candidate_s, tol, diagnosis);
  Record r = blank_record(candidate.name(), *p.gc, p.dtype, p.pass);
  r.timing.inputs_s = p.inputs_s;
  r.timing.golden_s = p.golden_s;
  r.timing.candidate_s = candidate_s;
  const auto t0 = std::chrono::steady_clock::now();
  if (const auto* failure = std::get_if<CandidateFailure>(&attempt)) {
    record_failure(p.gc->params, *failure, r);
  } else {
    const auto& output = std::get<CandidateOutput>(attempt);
    compare_outputs(p.gc->params, p.dtype, p.golden, *p.tables, output, tol, r, compare_options(p));
    if (p.calls && r.outcome != Outcome::dim_mismatch) {
      read_steps(p.gc->params, r, CompareOptions{}.curve_bins);
      if (const auto* own = one_pass ? std::get_if<CandidateOutput>(one_pass) : nullptr)
        compare_with_one_pass(p.gc->params, output, *own, *r.stream);
    }
  }
  r.timing.compare_s = seconds_since(t0);
  if (p.pass == Pass::backward) {
    const BackwardDiagnosisInput input{&p.gc->params, p.dtype, &p.upstream.g_q, &p.upstream.g_k,
                                       p.tables.get(), &tol, std::get_if<CandidateOutput>(&attempt)};
    diagnose_backward_record(input, r, diagnosis);
    return r;
  }
  const DiagnosisInput input{&p.gc->params, p.dtype, &p.inputs.q, &p.inputs.k, &p.golden,
                             p.tables.get(), &tol, std::get_if<CandidateOutput>(&attempt),
                             fresh_run_of(candidate, p),
                             candidate.execution() == Execution::serial};
  diagnose_record(input, r, diagnosis);
  return r;
}

// A stream runs on a fresh instance of its own (state carried between its calls is
// the point), then the whole case once more on another, for consistency.
Record run_prepared(Candidate& candidate, const Prepared& p, const Tolerance& tol,
                    const DiagnosisOptions& diagnosis) {
  const auto t0 = std::chrono::steady_clock::now();
  if (!p.calls) {
    const Attempt a = attempt(candidate, p.whole_job());
    return judge(candidate, p, a, seconds_since(t0), tol, diagnosis);
  }
  const auto fresh = candidate.fresh();
  const Attempt a = run_stream(fresh ? *fresh : candidate, p.gc->params, p.dtype, *p.calls);
  const double candidate_s = seconds_since(t0);
  std::optional<Attempt> one_pass;
  if (const auto again = candidate.fresh()) one_pass = attempt(*again, p.one_call_job());
  return judge(candidate, p, a, candidate_s, tol, diagnosis, one_pass ? &*one_pass : nullptr);
}

namespace {

std::unique_ptr<Candidate> yardstick_candidate(const CandidateFactory& yardstick) {
  if (!yardstick) throw std::invalid_argument("the relative tolerance rule needs a yardstick candidate");
  return yardstick();
}

}  // namespace

std::optional<Record> yardstick_in_blocks(const GridCase& gc, DType dtype, const Tolerance& tol,
                                          const CandidateFactory& yardstick, const BlockOptions& blocks) {
  if (tol.rule != ToleranceRule::relative) return std::nullopt;
  auto reference = yardstick_candidate(yardstick);
  Candidate* const one[] = {reference.get()};
  BlockOptions undiagnosed = blocks;
  undiagnosed.diagnosis.enabled = false;
  return judge_in_blocks(one, gc, dtype, tol, undiagnosed).front();
}

namespace {

void add_yardstick(Prepared& p, const Tolerance& tol, const CandidateFactory& yardstick) {
  if (tol.rule != ToleranceRule::relative) return;
  auto reference = yardstick_candidate(yardstick);
  DiagnosisOptions no_diagnosis;
  no_diagnosis.enabled = false;
  p.yardstick = run_prepared(*reference, p, tol, no_diagnosis);
}

}  // namespace

// A packed batch's sequences are judged each by its own yardstick record.
void add_yardsticks(Prepared& p, const Tolerance& tol, const CandidateFactory& yardstick) {
  if (!p.parts) return add_yardstick(p, tol, yardstick);
  for (Prepared& part : *p.parts) add_yardstick(part, tol, yardstick);
}

}  // namespace xposcheck::detail
