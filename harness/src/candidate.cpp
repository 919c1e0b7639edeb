#include "xposcheck/harness/candidate.hpp"

#include <exception>
#include <stdexcept>

#include "xposcheck/harness/candidate_text.hpp"

namespace xposcheck {

CandidateOutput Candidate::run_backward(const Case&, DType, const Tensor&, const Tensor&,
                                        const Tensor&, const Tensor&) {
  throw std::logic_error(name() + " has no backward pass");
}

Tensor Candidate::rotate_rows(const Case&, DType, const Tensor&, bool, long) {
  throw std::logic_error(name() + " cannot rotate a block of rows alone");
}

namespace {

// fn()'s value, or the failure its exception says: a candidate never takes the harness down.
template <class Fn>
auto catching(Fn&& fn) -> std::variant<decltype(fn()), CandidateFailure> {
  try {
    return fn();
  } catch (const ShapeError& e) {
    return CandidateFailure{FailureKind::shape, candidate_text(e.what())};
  } catch (const std::exception& e) {
    return CandidateFailure{FailureKind::crash, candidate_text(e.what())};
  } catch (...) {
    return CandidateFailure{FailureKind::crash, "unknown exception"};
  }
}

}  // namespace

Attempt attempt(Candidate& candidate, const Job& job) {
  return catching([&] {
    if (job.pass == Pass::backward) {
      if (!job.g_q || !job.g_k) throw std::logic_error("a backward job without upstream gradients");
      return candidate.run_backward(*job.params, job.dtype, *job.q_in, *job.k_in, *job.g_q, *job.g_k);
    }
    return candidate.run(*job.params, job.dtype, *job.q_in, *job.k_in);
  });
}

std::variant<Tensor, CandidateFailure> attempt_rows(Candidate& candidate, const Case& c, DType dtype,
                                                    const Tensor& rows, bool query, long first_row) {
  return catching([&] { return candidate.rotate_rows(c, dtype, rows, query, first_row); });
}

std::vector<Attempt> Candidate::run_batch(std::span<const Job> jobs) {
  std::vector<Attempt> attempts;
  attempts.reserve(jobs.size());
  for (const Job& job : jobs) attempts.push_back(attempt(*this, job));
  return attempts;
}

}  // namespace xposcheck
