#pragma once
// The diagnosis of a record judged in blocks. A diagnosis reads a sample of rows
// (diagnosis_rows), so those rows alone are gathered: their inputs and golden outputs
// made again bit for bit and the candidate's outputs asked again (a run of
// consecutive rows at a time). A candidate judged in blocks gives a row the same
// outputs whatever block holds it: built-ins rotate rows alone, and an external
// candidate's rows are read from its files. The diagnosis then sees what it would
// see of the whole case.
#include <functional>
#include <variant>

#include "xposcheck/cases/grid.hpp"
#include "xposcheck/harness/candidate.hpp"
#include "xposcheck/harness/diagnosis.hpp"
#include "xposcheck/harness/record.hpp"
#include "xposcheck/harness/tolerance.hpp"

namespace xposcheck::detail {

// A block of a candidate's outputs for the block of inputs `in`: rows first.. of q
// (query) or k, [batch, heads, rows, D].
using BlockOutputs = std::function<std::variant<Tensor, CandidateFailure>(const Tensor& in, bool query, long first)>;

// Diagnoses the record when it calls for it (wants_diagnosis) and attaches the result.
// outputs: the candidate's rows; null when the candidate left no outputs to read (a
// failure). Without a fresh instance of the candidate, call-order dependence is not
// tested. Rows that now fail or change shape leave the record undiagnosed, and so do
// outputs whose worst element no longer holds the value judged (the message says so).
// judge_frame: the whole case judged again in an accepted convention's frame, block by
// block (empty: not judged there).
void diagnose_in_blocks(const GridCase& gc, DType dtype, const BlockOutputs* outputs, const Tolerance& tol,
                        const DiagnosisOptions& options, Record& record, FrameJudge judge_frame = {});

}  // namespace xposcheck::detail
