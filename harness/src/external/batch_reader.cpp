// Reads one case's outcome back from a work directory: an error record, or the two
// outputs, validated before they reach the comparison.
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "external/fast_npy.hpp"
#include "external/npy_rows.hpp"
#include "external/protocol.hpp"
#include "xposcheck/harness/candidate_text.hpp"
#include "xposcheck/reference/npy.hpp"
#include "xposcheck/reference/regular_file.hpp"

namespace xposcheck::external {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::size_t kMaxMessage = 4000;
// An error or result record is a few hundred bytes; a larger one is refused unread.
constexpr std::size_t kMaxJsonBytes = 1 << 20;

std::string clip(std::string s) {
  if (s.size() > kMaxMessage) s = s.substr(0, kMaxMessage) + "...";
  return s;
}

json read_json(const fs::path& file) {
  const std::string text = valid_utf8(read_bounded(file, kMaxJsonBytes));
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw std::runtime_error(fmt::format("{}: not valid JSON ({})", file.string(), e.what()));
  }
}

std::string string_field(const json& j, const char* key) {
  return j.contains(key) && j.at(key).is_string() ? j.at(key).get<std::string>() : std::string();
}

// An error record: {"message": ..., "kind": "shape" | "crash" | "error", "where": ...}.
CandidateFailure read_error_record(const fs::path& file) {
  json j;
  try {
    j = read_json(file);
  } catch (const std::exception& e) {
    return {FailureKind::crash, std::string("unreadable error record: ") + e.what()};
  }
  if (!j.is_object() || !j.contains("message") || !j.at("message").is_string()) {
    return {FailureKind::crash,
            file.string() + ": error record without a \"message\" string: " +
                clip(j.dump(-1, ' ', false, json::error_handler_t::replace))};
  }
  const std::string message = clip(candidate_text(j.at("message").get<std::string>()));
  const std::string kind = string_field(j, "kind");
  if (kind == "shape") return {FailureKind::shape, message};
  if (kind == "crash") return {FailureKind::crash, message};
  const std::string where = clip(candidate_text(string_field(j, "where")));
  return {FailureKind::crash,
          "candidate error: " + message + (where.empty() ? "" : " (at " + where + ")")};
}

// The first element of a float32 file that bf16 cannot hold exactly, if any.
std::optional<std::size_t> first_inexact_bf16(const Tensor& t) {
  for (std::size_t i = 0; i < t.data.size(); ++i) {
    if (!holds_bf16(t.data[i])) return i;
  }
  return std::nullopt;
}

// The dtype a file holds, as the comparison names dtypes ("fp32", "bf16", "fp16"),
// or a description of what it holds instead.
std::string file_dtype(const NpyArray& a, DType want) {
  const std::string named = npy_dtype_name(a.descr, want);
  if (a.descr != "<f4" || want != DType::bf16) return named;
  const auto bad = first_inexact_bf16(a.tensor);
  if (!bad) return named;  // float32 encoding of bf16 values
  return inexact_bf16_name(*bad, a.tensor.data[*bad]);
}

void read_output(const fs::path& file, const Shape& shape, DType want, Tensor& tensor,
                 std::string& dtype) {
  NpyArray a = read_output_npy(file, &shape);
  dtype = candidate_text(file_dtype(a, want));
  tensor = std::move(a.tensor);
}

double number_field(const json& j, const char* key) {
  return j.contains(key) && j.at(key).is_number() ? j.at(key).get<double>() : 0.0;
}

// Present in any form: a FIFO or a link where a file belongs is there, and refused
// when read.
bool file_exists(const fs::path& file) {
  std::error_code ec;
  return fs::exists(fs::symlink_status(file, ec));
}

// The result record's timings: {"compute_s": ..., "load_s": ..., "save_s": ...}.
void read_timings(const fs::path& file, CaseReport& r) {
  if (!file_exists(file)) return;
  try {
    const json j = read_json(file);
    if (!j.is_object()) return;
    if (j.contains("compute_s") && j.at("compute_s").is_number()) r.compute_s = j.at("compute_s").get<double>();
    r.io_s = number_field(j, "load_s") + number_field(j, "save_s");
  } catch (const std::exception&) {
    // Timings are informational: an unreadable result record loses only them.
  }
}

}  // namespace

CaseReport read_case(const Job& job, const CaseFiles& f) {
  CaseReport r;
  read_timings(f.result, r);
  if (file_exists(f.error)) {
    r.finished = true;
    r.attempt = read_error_record(f.error);
    return r;
  }
  if (!file_exists(f.q_out) || !file_exists(f.k_out)) return r;
  r.finished = true;
  try {
    if (job.input_rows) {  // a long case: its values stay in the files, read by rows
      r.attempt = output_from_files(f.q_out, f.k_out, job.dtype);
      return r;
    }
    CandidateOutput out;
    read_output(f.q_out, job.params->q_shape(), job.dtype, out.q_out, out.q_dtype);
    read_output(f.k_out, job.params->k_shape(), job.dtype, out.k_out, out.k_dtype);
    r.attempt = std::move(out);
  } catch (const std::exception& e) {
    r.attempt = CandidateFailure{FailureKind::crash, "unreadable output: " + candidate_text(e.what())};
  }
  return r;
}

}  // namespace xposcheck::external
