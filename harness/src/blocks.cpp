#include "xposcheck/harness/blocks.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <variant>
#include <stdexcept>

#include <fmt/format.h>

#include "blank_record.hpp"
#include "block_diagnosis.hpp"
#include "elapsed.hpp"
#include "xposcheck/harness/compare.hpp"
#include "xposcheck/harness/gate.hpp"
#include "xposcheck/harness/limits.hpp"
#include "xposcheck/reference/golden_blocks.hpp"
#include "xposcheck/reference/inputs.hpp"
#include "xposcheck/reference/tables.hpp"

namespace xposcheck {
namespace {

using detail::BlockOutputs;
using Clock = std::chrono::steady_clock;

using detail::seconds_since;

// A digest of every output value a candidate gave, in the order given: a pass over the
// same blocks that reads other values gets another digest.
class OutputDigest {
 public:
  void add(const Tensor& t) {
    for (std::size_t i = 0; i < t.data.size(); ++i) {
      std::uint64_t& lane = lanes_[i % kLanes];
      lane = (lane ^ std::bit_cast<std::uint64_t>(t.data[i])) * 0x100000001B3ULL;
    }
  }
  bool operator==(const OutputDigest&) const = default;

 private:
  static constexpr std::size_t kLanes = 4;  // independent chains: the products overlap
  std::array<std::uint64_t, kLanes> lanes_ = {0xCBF29CE484222325ULL, 1, 2, 3};
};

// One candidate's part of the pass over the blocks.
struct Judged {
  std::string name;
  BlockOutputs outputs;
  OutputDigest digest;  // kept only when a convention may be judged again in its frame
  std::unique_ptr<OutputComparer> comparer;
  std::optional<CandidateFailure> failure;
  Tensor sample;  // its q_out at the sampled logit rows, [batch, heads, rows, D]
  double candidate_s = 0, compare_s = 0;
};

class BlockJudge {
 public:
  BlockJudge(const GridCase& gc, DType dtype, const Tolerance& tol, std::vector<long> logit_rows,
             const Record* yardstick, bool digests)
      : c_(gc.params), dtype_(dtype), tol_(tol), rows_(std::move(logit_rows)), tables_(c_, 1, 1),
        digests_(digests) {
    options_.yardstick = yardstick;
  }

  void add(std::string name, BlockOutputs outputs) {
    Judged& j = judged_.emplace_back();
    j.name = std::move(name);
    j.outputs = std::move(outputs);
    // The allowances read omega_j alone (angle(1, j)): a table of one position serves.
    j.comparer = std::make_unique<OutputComparer>(c_, dtype_, tables_, tol_, rows_, options_);
    j.sample = Tensor(Shape{std::size_t(c_.batch), std::size_t(c_.heads), rows_.size(), std::size_t(c_.head_dim)});
  }

  void take(const GoldenBlock& b) {
    const Tensor in(Shape{std::size_t(c_.batch), std::size_t(c_.heads), std::size_t(b.count), std::size_t(c_.head_dim)},
                    b.in);
    for (Judged& j : judged_) judge(j, b, in);
  }

  // The records, each diagnosed from its candidate's rows; an accepted convention's
  // frame judged again by `in_frame` over the same outputs.
  using FrameJudges =
      std::function<FrameJudge(const std::string& name, const BlockOutputs& outputs, const OutputDigest& digest)>;
  std::vector<Record> finish(const GridCase& gc, const Timing& shared, const DiagnosisOptions& diagnosis,
                             const FrameJudges& in_frame) {
    std::vector<Record> records;
    for (Judged& j : judged_) {
      Record r = blank_record(j.name, gc, dtype_, Pass::forward);
      if (j.failure) record_failure(c_, *j.failure, r);
      else j.comparer->finish(r);
      r.timing = shared;
      r.timing.candidate_s = j.candidate_s;
      r.timing.compare_s = j.compare_s;
      detail::diagnose_in_blocks(gc, dtype_, j.failure ? nullptr : &j.outputs, tol_, diagnosis, r,
                                 j.failure ? FrameJudge{} : in_frame(j.name, j.outputs, j.digest));
      records.push_back(std::move(r));
    }
    return records;
  }

 private:
  void judge(Judged& j, const GoldenBlock& b, const Tensor& in) {
    if (j.failure) return;
    auto t0 = Clock::now();
    auto got = j.outputs(in, b.query, b.first);
    j.candidate_s += seconds_since(t0);
    if (auto* failure = std::get_if<CandidateFailure>(&got)) {
      j.failure = std::move(*failure);
      return;
    }
    const Tensor& out = std::get<Tensor>(got);
    if (digests_) j.digest.add(out);
    if (out.shape != in.shape || out.size() != in.size()) {
      j.failure = CandidateFailure{FailureKind::shape,
                                   fmt::format("rows {}..{} of {} came back shaped {}, not {}", b.first,
                                               b.first + b.count - 1, b.query ? "q_out" : "k_out",
                                               shape_string(out.shape), shape_string(in.shape))};
      return;
    }
    t0 = Clock::now();
    if (b.query) {
      j.comparer->add_query_rows(b.first, b.count, b.out.data(), out.data.data());
      keep_sample(j, b, out);
    } else {
      j.comparer->add_key_rows(b.first, b.count, b.out.data(), out.data.data());
      if (!rows_.empty() && !b.logits.empty() && j.comparer->clean_so_far()) {
        std::vector<long> all(rows_.size());
        for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<long>(i);
        const Tensor logits = logits_of(j.sample, out, all);
        j.comparer->add_logits(b.first, b.count, b.out.data(), b.logits.data(), logits.data.data());
      }
    }
    j.compare_s += seconds_since(t0);
  }

  // The sampled query rows of the block's candidate outputs, for the logits.
  void keep_sample(Judged& j, const GoldenBlock& b, const Tensor& out) {
    const long bh = c_.batch * c_.heads, d = c_.head_dim, sampled = static_cast<long>(rows_.size());
    for (long i = 0; i < sampled; ++i) {
      const long m = rows_[static_cast<std::size_t>(i)];
      if (m < b.first || m >= b.first + b.count) continue;
      for (long l = 0; l < bh; ++l)
        std::copy_n(out.row(static_cast<std::size_t>(l * b.count + m - b.first)), d,
                    j.sample.row(static_cast<std::size_t>(l * sampled + i)));
    }
  }

  const Case& c_;
  DType dtype_;
  const Tolerance& tol_;
  std::vector<long> rows_;
  RotaryTables tables_;
  bool digests_;
  CompareOptions options_;
  std::vector<Judged> judged_;
};

}  // namespace

bool judged_in_blocks_possible(const Case& c, Pass pass) {
  return pass == Pass::forward && !c.stream && !c.packed && !c.positions;
}

bool judged_in_blocks(const Case& c, Pass pass, std::size_t logit_rows, double block_above_bytes) {
  return judged_in_blocks_possible(c, pass) && estimated_case_bytes(c, logit_rows) > block_above_bytes;
}

double estimated_block_bytes(const Case& c, std::size_t logit_rows, std::size_t candidates) {
  const double block = double(c.batch * c.heads * c.head_dim) * double(golden_block_rows(c)) * 8;
  const double rows = double(std::min<std::size_t>(logit_rows, std::size_t(c.seq_len)));
  const double logits = double(c.batch * c.heads) * rows * double(golden_block_rows(c)) * 8;
  const double sample = double(c.batch * c.heads * c.head_dim) * rows * 8;
  // Inputs, golden outputs and their logits; per candidate its block, its logits,
  // sample and the comparison's curves; the table seeds; then one failing record's
  // diagnosis at a time, its sampled rows of every (batch, head): inputs, golden and
  // candidate outputs of q and k.
  const double seeds = double(c.pairs()) * 64 * 1024;
  const double diagnosed_rows = double(std::min<long>(c.key_rows(), long(DiagnosisOptions{}.max_rows) + 2));
  const double diagnosis = 6 * double(c.batch * c.heads * c.head_dim) * diagnosed_rows * 8 + seeds;
  return 3 * block + logits + double(candidates) * (2 * block + logits + sample) + seeds + diagnosis;
}

namespace {

Record judged_in_frame(const GridCase& gc, DType dtype, const Tolerance& tolerance, const BlockOptions& options,
                       const std::string& name, const BlockOutputs& outputs, const OutputDigest& judged,
                       const ConventionFrame& frame);

// The pass over the blocks, for the candidates `add` gives the judge; in a
// convention's frame, golden outputs moved by its centre offset.
std::vector<Record> run_blocks(const GridCase& gc, DType dtype, const Tolerance& tolerance, const BlockOptions& options,
                               const Record* yardstick, const std::function<void(BlockJudge&)>& add,
                               const ConventionFrame* frame = nullptr) {
  const Case& c = gc.params;
  if (!judged_in_blocks_possible(c, Pass::forward))
    throw std::invalid_argument("case " + gc.id + " cannot be judged in blocks (a stream, packed batch or explicit positions)");
  const long block_rows = options.block_rows > 0 ? options.block_rows : golden_block_rows(c);
  const GoldenOptions golden = judging_golden_options(c, options.max_logit_rows);
  // A pass in a convention's frame reads the outputs again: it must read the values judged.
  const bool digests = !frame && options.diagnosis.enabled && !options.diagnosis.accept_conventions.empty();
  BlockJudge judge(gc, dtype, tolerance, logit_rows(c.seq_len, golden.max_logit_rows), yardstick, digests);
  add(judge);
  const long blocks = (c.seq_len + block_rows - 1) / block_rows + (c.key_rows() + block_rows - 1) / block_rows;
  long done = 0;
  Timing timing;
  double judging_s = 0;
  const auto t0 = Clock::now();
  const auto inputs = [&](GoldenBlock& b) {
    const auto t = Clock::now();
    generate_rows(c, gc.seed, dtype, b.query, b.first, b.count, b.in.data());
    timing.inputs_s += seconds_since(t);
  };
  const std::optional<CentreOffsetMove> move = frame ? std::optional<CentreOffsetMove>(*frame) : std::nullopt;
  golden_fast_blocks(c, inputs, golden, block_rows, [&](GoldenBlock& b) {
    const auto t = Clock::now();
    if (move) move->apply(b.query, b.out.data(), b.count * c.batch * c.heads);
    judge.take(b);
    judging_s += seconds_since(t);
    if (options.stage) options.stage(fmt::format("rows in blocks: {} of {}", ++done, blocks));
  });
  timing.golden_s = seconds_since(t0) - judging_s - timing.inputs_s;
  return judge.finish(gc, timing, options.diagnosis,
                      [&](const std::string& name, const BlockOutputs& outputs, const OutputDigest& judged) {
                        return [&, name, outputs, judged](const ConventionFrame& f) {
                          return judged_in_frame(gc, dtype, tolerance, options, name, outputs, judged, f);
                        };
                      });
}

// The same inputs (drawn by shape and seed) and outputs, the frame's golden values: one
// more pass over the blocks, undiagnosed. Outputs read other than judged fail there.
Record judged_in_frame(const GridCase& gc, DType dtype, const Tolerance& tolerance, const BlockOptions& options,
                       const std::string& name, const BlockOutputs& outputs, const OutputDigest& judged,
                       const ConventionFrame& frame) {
  BlockOptions plain = options;
  plain.diagnosis.enabled = false;
  if (options.stage) plain.stage = [&](const std::string& s) { options.stage("in a convention's frame, " + s); };
  OutputDigest read;
  const BlockOutputs digested = [&](const Tensor& in, bool query, long first) {
    auto got = outputs(in, query, first);
    if (const auto* t = std::get_if<Tensor>(&got)) read.add(*t);
    return got;
  };
  Record r = run_blocks(GridCase{gc.id, frame.params, gc.seed}, dtype, tolerance, plain, nullptr,
                        [&](BlockJudge& j) { j.add(name, digested); }, &frame)
                 .front();
  if (!(read == judged) && !fails_gate(r)) {
    r.outcome = Outcome::crash;
    r.message = "the candidate's outputs changed after they were judged";
  }
  return r;
}

}  // namespace

std::vector<Record> judge_in_blocks(std::span<Candidate* const> candidates, const GridCase& gc, DType dtype,
                                    const Tolerance& tolerance, const BlockOptions& options,
                                    const Record* yardstick) {
  return run_blocks(gc, dtype, tolerance, options, yardstick, [&](BlockJudge& judge) {
    for (Candidate* candidate : candidates)
      judge.add(candidate->name(), [candidate, &gc, dtype](const Tensor& in, bool query, long first) {
        return attempt_rows(*candidate, gc.params, dtype, in, query, first);
      });
  });
}

Record judge_output_in_blocks(const std::string& candidate, const CandidateOutput& output, const GridCase& gc,
                              DType dtype, const Tolerance& tolerance, const BlockOptions& options,
                              const Record* yardstick) {
  Record shapes = blank_record(candidate, gc, dtype, Pass::forward);
  if (!check_output_shapes(gc.params, dtype, output, shapes)) {
    detail::diagnose_in_blocks(gc, dtype, nullptr, tolerance, options.diagnosis, shapes);
    return shapes;
  }
  if (!output.rows) throw std::invalid_argument("judge_output_in_blocks: outputs without rows");
  const std::shared_ptr<const OutputRows> rows = output.rows;
  Record r = run_blocks(gc, dtype, tolerance, options, yardstick, [&](BlockJudge& judge) {
    judge.add(candidate, [rows](const Tensor& in, bool query, long first) -> std::variant<Tensor, CandidateFailure> {
      Tensor out(in.shape);
      if (auto error = rows->read(query, first, static_cast<long>(in.shape[2]), out.data.data()))
        return CandidateFailure{FailureKind::crash, "unreadable output: " + *error};
      return out;
    });
  }).front();
  r.timing.candidate_s = output.seconds.value_or(0.0);
  return r;
}

}  // namespace xposcheck
