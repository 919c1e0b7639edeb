#include "xposcheck/harness/candidate.hpp"

#include <exception>

#include "xposcheck/harness/candidate_text.hpp"

namespace xposcheck {

Attempt attempt(Candidate& candidate, const Job& job) {
  try {
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
