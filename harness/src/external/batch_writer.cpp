// Writes a batch's work directory: the inputs as .npy in the case's dtype, then the
// manifest that describes every case with its parameters resolved.
#include <fstream>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "external/fast_npy.hpp"
#include "external/npy_rows.hpp"
#include "parallel_for.hpp"
#include "external/protocol.hpp"
#include "xposcheck/reference/atomic_file.hpp"
#include "xposcheck/reference/case_json.hpp"
#include "xposcheck/reference/npy.hpp"
#include "xposcheck/version.hpp"

namespace xposcheck::external {
namespace {

using nlohmann::json;

NpyStorage input_storage(DType dtype, Bf16Encoding bf16) {
  switch (dtype) {
    case DType::fp32: return NpyStorage::f4;
    case DType::fp16: return NpyStorage::f2;
    case DType::bf16: return bf16 == Bf16Encoding::bits ? NpyStorage::bf16_bits : NpyStorage::f4;
  }
  return NpyStorage::f8;
}

// A backward case also names its pass and its upstream gradients; its outputs are
// the dq and dk files (case_files).
void add_backward(const BatchEntry& e, json& entry) {
  if (e.job->pass != Pass::backward) return;
  entry[kPassKey] = pass_name(Pass::backward);
  entry["inputs"]["g_q"] = e.files.g_q.string();
  entry["inputs"]["g_k"] = e.files.g_k.string();
}

json case_entry(const BatchEntry& e, double time_limit_s) {
  const Case& c = *e.job->params;
  json entry = {{"id", e.files.id},
          {"case_id", case_id(c)},
          {"dtype", std::string(dtype_name(e.job->dtype))},
          {"params", case_to_json(c, CaseForm::resolved)},
          {"inputs", {{"q", e.files.q_in.string()}, {"k", e.files.k_in.string()}}},
          {"outputs", {{"q", e.files.q_out.string()}, {"k", e.files.k_out.string()}}},
          {"error", e.files.error.string()},
          {"result", e.files.result.string()},
          {"shapes", {{"q_in", c.q_shape()}, {"k_in", c.k_shape()},
                      {"q_out", c.q_shape()}, {"k_out", c.k_shape()}}},
          {"time_limit_s", time_limit_s},
          {"continues_stream", e.job->continues_stream}};
  add_backward(e, entry);
  return entry;
}

}  // namespace

CaseFiles case_files(const std::filesystem::path& dir, std::size_t index, Pass pass) {
  CaseFiles f;
  f.id = fmt::format("c{:03}", index);
  const auto file = [&](const char* suffix) { return dir / (f.id + suffix); };
  const bool backward = pass == Pass::backward;
  f.q_in = file(kQInSuffix);
  f.k_in = file(kKInSuffix);
  f.q_out = file(backward ? kDqSuffix : kQOutSuffix);
  f.k_out = file(backward ? kDkSuffix : kKOutSuffix);
  f.error = file(kErrorSuffix);
  f.result = file(kResultSuffix);
  if (backward) {
    f.g_q = file(kGqSuffix);
    f.g_k = file(kGkSuffix);
  }
  return f;
}

void write_batch(const std::filesystem::path& dir, const std::string& candidate,
                 const std::vector<BatchEntry>& entries, Bf16Encoding bf16_inputs,
                 double case_time_limit_s) {
  // Four files per entry: q and k, and for a backward case g_q and g_k.
  parallel_for(4 * entries.size(), [&](std::size_t i) {
    const BatchEntry& e = entries[i / 4];
    const NpyStorage storage = input_storage(e.job->dtype, bf16_inputs);
    const Case& c = *e.job->params;
    if (e.job->input_rows && i % 4 < 2)  // a long case: its rows, a block at a time
      write_input_npy_rows(i % 4 == 0 ? e.files.q_in : e.files.k_in, i % 4 == 0 ? c.q_shape() : c.k_shape(),
                           storage, e.job->input_rows, i % 4 == 0, e.job->input_block_rows);
    else if (i % 4 == 0) write_input_npy(e.files.q_in, *e.job->q_in, storage);
    else if (i % 4 == 1) write_input_npy(e.files.k_in, *e.job->k_in, storage);
    else if (e.job->pass == Pass::backward)
      write_input_npy(i % 4 == 2 ? e.files.g_q : e.files.g_k, i % 4 == 2 ? *e.job->g_q : *e.job->g_k, storage);
  });
  json cases = json::array();
  for (const BatchEntry& e : entries) cases.push_back(case_entry(e, case_time_limit_s));
  const json manifest = {
      {"protocol", kProtocolName},
      {"version", kProtocolVersion},
      {"xposcheck", kVersion},
      {"candidate", candidate},
      {"work_dir", dir.string()},
      {"bf16_encoding", bf16_inputs == Bf16Encoding::bits ? "bits" : "float32"},
      {"cases", cases}};
  // Atomically: a candidate started early may be waiting for it to appear.
  write_atomically(dir / kManifestFile, manifest.dump(1) + '\n');
}

}  // namespace xposcheck::external
