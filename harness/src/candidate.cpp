#include "xposcheck/harness/candidate.hpp"

#include <exception>
#include <stdexcept>

#include "xposcheck/harness/candidate_text.hpp"

namespace xposcheck {

CandidateOutput Candidate::run_backward(const Case&, DType, const Tensor&, const Tensor&,
                                        const Tensor&, const Tensor&) {
  throw std::logic_error(name() + " has no backward pass");
}

Attempt attempt(Candidate& candidate, const Job& job) {
  try {
    if (job.pass == Pass::backward) {
      if (!job.g_q || !job.g_k) throw std::logic_error("a backward job without upstream gradients");
      return candidate.run_backward(*job.params, job.dtype, *job.q_in, *job.k_in, *job.g_q, *job.g_k);
    }
    return candidate.run(*job.params, job.dtype, *job.q_in, *job.k_in);
  } catch (const ShapeError& e) {
    return CandidateFailure{FailureKind::shape, candidate_text(e.what())};
  } catch (const std::exception& e) {
    return CandidateFailure{FailureKind::crash, candidate_text(e.what())};
  } catch (...) {
    return CandidateFailure{FailureKind::crash, "unknown exception"};
  }
}

std::vector<Attempt> Candidate::run_batch(std::span<const Job> jobs) {
  std::vector<Attempt> attempts;
  attempts.reserve(jobs.size());
  for (const Job& job : jobs) attempts.push_back(attempt(*this, job));
  return attempts;
}

}  // namespace xposcheck
