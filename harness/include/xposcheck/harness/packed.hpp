#pragma once
// Packed batches (docs/streams.md, "Packed batches"): the candidate gets the packed
// tensors in one call; the harness judges every sequence as a case of its own on its
// rows of the outputs, and the batch's record holds every sequence's verdict, so that
// one wrong sequence fails only itself.
#include <optional>
#include <vector>

#include "xposcheck/harness/candidate.hpp"
#include "xposcheck/harness/diagnosis_data.hpp"
#include "xposcheck/harness/record.hpp"
#include "xposcheck/harness/tolerance.hpp"

namespace xposcheck {

// Sequence i's rows of a candidate's packed outputs (shapes checked beforehand).
CandidateOutput sequence_output(const Case& c, const CandidateOutput& out, long i);

// The packed batch's record from its sequences' records (in order, each judged as
// sequence_case(i)): the verdict of every sequence; the outcome, message and evidence
// of the first sequence that fails the gate (else of the one nearest its tolerance),
// its rows and positions as the packed tensors have them; statistics over all.
void merge_sequence_records(const Case& c, const std::vector<Record>& parts, Record& whole);

// Whether sequence i's outputs are its golden outputs at positions that continue from
// the sequences before it (shifted by their key rows: positions not restarting at the
// sequence boundaries, Megatron-LM #5243), with the XPOS centre moved along or not.
// Returns the diagnosis that says so, or nothing.
std::optional<Diagnosis> positions_continue(const Case& c, DType dtype, const Tolerance& tol, long i,
                                            const Tensor& q_in, const Tensor& k_in,
                                            const CandidateOutput& output);

}  // namespace xposcheck
