#include "results_json.hpp"

#include "diagnosis/diagnosis_json.hpp"
#include "baseline_detail.hpp"
#include "xposcheck/reference/case_json.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <stdexcept>

namespace xposcheck {
namespace {

using nlohmann::json;

template <class T>
void get_optional(const json& j, const char* key, std::optional<T>& out) {
  if (j.contains(key) && !j.at(key).is_null()) out = j.at(key).get<T>();
}

// A count: negative numbers would wrap to huge ones in get<std::size_t>.
std::size_t count_at(const json& j, const char* key) {
  const json& v = j.at(key);
  if (!v.is_number_unsigned()) throw std::invalid_argument(fmt::format("'{}' is {}, not a count (an integer >= 0)", key, v.dump()));
  return v.get<std::size_t>();
}

// JSON has no infinity: non-finite doubles travel as strings.
json number(double v) {
  if (std::isfinite(v)) return v;
  return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
}

double number_from(const json& j) {
  if (j.is_number()) return j.get<double>();
  const std::string s = j.get<std::string>();
  if (s == "nan") return std::nan("");
  return s == "inf" ? INFINITY : -INFINITY;
}

json element_to_json(const ElementRef& e) {
  return {{"batch", e.batch}, {"head", e.head}, {"row", e.row}, {"feature", e.feature},
          {"position", e.position}, {"pair", e.pair}, {"got", number(e.got)}, {"want", number(e.want)},
          {"error_ulps", e.error_ulps}, {"allowed_ulps", e.allowed_ulps}};
}

ElementRef element_from_json(const json& j) {
  return {j.at("batch"), j.at("head"), j.at("row"), j.at("feature"), j.at("position"),
          j.at("pair"), number_from(j.at("got")), number_from(j.at("want")),
          j.at("error_ulps"), j.at("allowed_ulps")};
}

// Curves are for plots: four significant digits keep a results file small.
double plot_number(double v) { return std::stod(fmt::format("{:.4g}", v)); }

json tensor_to_json(const TensorStats& t) {
  json curve = json::array();
  for (const PositionBin& b : t.curve) {
    curve.push_back({b.first, b.last, plot_number(b.max_ulps), plot_number(b.rms_ulps),
                     plot_number(b.max_allowed_ulps), plot_number(b.max_ratio), plot_number(b.max_rel)});
  }
  json j = {{"name", t.name}, {"compared", t.compared}, {"elements", t.elements},
            {"over_tolerance", t.over_tolerance}, {"nonfinite", t.nonfinite},
            {"first_nonfinite", t.first_nonfinite ? element_to_json(*t.first_nonfinite) : json()},
            {"max_ulps", t.max_ulps}, {"mean_ulps", t.mean_ulps}, {"rms_ulps", t.rms_ulps},
            {"max_abs", t.max_abs}, {"max_rel", t.max_rel}, {"max_ratio", t.max_ratio},
            {"worst", element_to_json(t.worst)}, {"curve", curve}};
  if (t.bias) j["bias"] = *t.bias;
  if (t.bias_allowed) j["bias_allowed"] = *t.bias_allowed;
  return j;
}

// [first, last, max_ulps, rms_ulps, max_allowed_ulps, max_ratio, max_rel]; files written
// before the relative error was binned have six entries, and read with max_rel 0.
PositionBin bin_from_json(const json& b, std::size_t index) {
  const bool shaped = b.is_array() && (b.size() == 6 || b.size() == 7) && b[0].is_number_integer() &&
                      b[1].is_number_integer() &&
                      std::all_of(b.begin() + 2, b.end(), [](const json& v) { return v.is_number(); });
  if (!shaped || b[0].get<long>() > b[1].get<long>())
    throw std::invalid_argument(fmt::format("curve bin {} is not [first, last, max_ulps, rms_ulps, "
                                            "max_allowed_ulps, max_ratio, max_rel] with first <= last", index));
  PositionBin bin{b[0], b[1], b[2], b[3], b[4], b[5]};
  if (b.size() == 7) bin.max_rel = b[6];
  if (!(bin.max_rel >= 0))
    throw std::invalid_argument(fmt::format("curve bin {}: max_rel {} is negative", index, bin.max_rel));
  return bin;
}

TensorStats tensor_from_json(const json& j) {
  TensorStats t;
  t.name = j.at("name");
  t.compared = j.at("compared");
  t.elements = count_at(j, "elements");
  t.over_tolerance = count_at(j, "over_tolerance");
  t.nonfinite = count_at(j, "nonfinite");
  if (!j.at("first_nonfinite").is_null()) t.first_nonfinite = element_from_json(j.at("first_nonfinite"));
  t.max_ulps = j.at("max_ulps");
  t.mean_ulps = j.at("mean_ulps");
  t.rms_ulps = j.at("rms_ulps");
  t.max_abs = j.at("max_abs");
  t.max_rel = j.at("max_rel");
  t.max_ratio = j.at("max_ratio");
  t.worst = element_from_json(j.at("worst"));
  if (j.contains("bias")) t.bias = j.at("bias").get<double>();
  if (j.contains("bias_allowed")) t.bias_allowed = j.at("bias_allowed").get<double>();
  for (const json& b : j.at("curve")) t.curve.push_back(bin_from_json(b, t.curve.size()));
  return t;
}

}  // namespace

json spec_to_json(const ToleranceSpec& s) {
  json j = json::object();
  if (s.rule) j["rule"] = rule_name(*s.rule);
  const std::pair<const char*, const std::optional<double>*> fields[] = {
      {"base_ulps", &s.base_ulps},       {"angle_factor", &s.angle_factor},
      {"scale_factor", &s.scale_factor}, {"logits_factor", &s.logits_factor},
      {"logits_bias", &s.logits_bias},
      {"relative_k", &s.relative_k},     {"relative_floor_ulps", &s.relative_floor_ulps}};
  for (const auto& [key, value] : fields) {
    if (*value) j[key] = **value;
  }
  return j;
}

ToleranceSpec spec_from_json(const json& j) {
  ToleranceSpec s;
  if (j.contains("rule")) s.rule = parse_rule(j.at("rule").get<std::string>());
  get_optional(j, "base_ulps", s.base_ulps);
  get_optional(j, "angle_factor", s.angle_factor);
  get_optional(j, "scale_factor", s.scale_factor);
  get_optional(j, "logits_factor", s.logits_factor);
  get_optional(j, "logits_bias", s.logits_bias);
  get_optional(j, "relative_k", s.relative_k);
  get_optional(j, "relative_floor_ulps", s.relative_floor_ulps);
  return s;
}

// Steps as compact rows, like curves: [step, first, last, q, k, logits, nonfinite, beyond_range].
json stream_to_json(const StreamVerdict& v) {
  json steps = json::array();
  for (const StepVerdict& s : v.steps) {
    steps.push_back({s.step, s.first_position, s.last_position, number(plot_number(s.q_ratio)),
                     number(plot_number(s.k_ratio)), number(plot_number(s.logits_ratio)), s.nonfinite,
                     s.beyond_range});
  }
  json j = {{"prefill", v.prefill}, {"step_rows", v.step_rows}, {"steps", steps},
            {"first_failing_step", nullptr}, {"one_pass_difference", nullptr},
            {"one_pass_first_step", nullptr}};
  if (v.first_failing_step) j["first_failing_step"] = *v.first_failing_step;
  if (v.one_pass_difference) j["one_pass_difference"] = number(*v.one_pass_difference);
  if (v.one_pass_first_step) j["one_pass_first_step"] = *v.one_pass_first_step;
  return j;
}

// A results file is read back from disk: every index it gives is checked before the
// reports use it.
long step_index(const json& j, const char* key, std::size_t steps) {
  const json& v = j.at(key);
  if (!v.is_number_integer() || v.get<long>() < 0 || static_cast<std::size_t>(v.get<long>()) >= steps)
    throw std::invalid_argument(fmt::format("stream '{}' is {}, not a step of the {} listed", key, v.dump(), steps));
  return v.get<long>();
}

StreamVerdict stream_from_json(const json& j) {
  StreamVerdict v;
  v.prefill = j.at("prefill");
  v.step_rows = j.at("step_rows");
  const json& steps = j.at("steps");
  if (!steps.is_array()) throw std::invalid_argument("stream 'steps' is not an array");
  for (const json& s : steps) {
    const bool integers = s.is_array() && s.size() == 8 && s[0].is_number_integer() &&
                          s[1].is_number_integer() && s[2].is_number_integer();
    if (!integers || !s[6].is_boolean() || !s[7].is_boolean() || s[0].get<long>() != static_cast<long>(v.steps.size()))
      throw std::invalid_argument(fmt::format("stream step {} is not [step, first, last, q, k, logits, "
                                              "non-finite, beyond range] with its own index", v.steps.size()));
    v.steps.push_back({s[0], s[1], s[2], number_from(s[3]), number_from(s[4]), number_from(s[5]), s[6], s[7]});
  }
  if (j.contains("first_failing_step") && !j.at("first_failing_step").is_null())
    v.first_failing_step = step_index(j, "first_failing_step", v.steps.size());
  if (j.contains("one_pass_difference") && !j.at("one_pass_difference").is_null())
    v.one_pass_difference = number_from(j.at("one_pass_difference"));
  if (j.contains("one_pass_first_step") && !j.at("one_pass_first_step").is_null())
    v.one_pass_first_step = step_index(j, "one_pass_first_step", v.steps.size());
  return v;
}

json packed_to_json(const PackedVerdict& v) {
  json sequences = json::array();
  for (const SequenceVerdict& s : v.sequences) {
    sequences.push_back({{"index", s.index}, {"seq_len", s.seq_len}, {"mem_len", s.mem_len},
                         {"first_position", s.first_position}, {"first_query_row", s.first_query_row},
                         {"first_key_row", s.first_key_row}, {"outcome", outcome_name(s.outcome)},
                         {"max_ratio", number(plot_number(s.max_ratio))}, {"message", s.message}});
  }
  return {{"sequences", sequences}, {"failing", v.failing}};
}

PackedVerdict packed_from_json(const json& j) {
  PackedVerdict v;
  const json& sequences = j.at("sequences");
  if (!sequences.is_array()) throw std::invalid_argument("packed 'sequences' is not an array");
  for (const json& s : sequences) {
    const auto outcome = parse_outcome(s.at("outcome").get<std::string>());
    if (!outcome || s.at("index").get<long>() != static_cast<long>(v.sequences.size()))
      throw std::invalid_argument(fmt::format("packed sequence {} has an unknown outcome or another index", v.sequences.size()));
    v.sequences.push_back({s.at("index"), s.at("seq_len"), s.at("mem_len"), s.at("first_position"),
                           s.at("first_query_row"), s.at("first_key_row"), *outcome,
                           number_from(s.at("max_ratio")), s.at("message")});
  }
  for (const json& f : j.at("failing")) {
    if (!f.is_number_integer() || f.get<long>() < 0 || f.get<std::size_t>() >= v.sequences.size())
      throw std::invalid_argument(fmt::format("packed 'failing' lists {}, not one of the {} sequences", f.dump(),
                                              v.sequences.size()));
    v.failing.push_back(f.get<long>());
  }
  return v;
}

json horizon_to_json(const AccuracyHorizon& h) {
  const auto optional = [](const std::optional<long>& v) { return v ? json(*v) : json(); };
  return {{"threshold", h.threshold}, {"near", optional(h.near)}, {"far", optional(h.far)},
          {"tensor", h.tensor}, {"reach", h.reach}};
}

// A distance |p| from position 0: an integer >= 0, or null when allowed.
std::optional<long> distance_at(const json& j, const char* key) {
  const json& v = j.at(key);
  if (v.is_null()) return std::nullopt;
  if (!v.is_number_integer() || v.get<long>() < 0)
    throw std::invalid_argument(fmt::format("horizon '{}' is {}, not a distance |p| (an integer >= 0)", key, v.dump()));
  return v.get<long>();
}

AccuracyHorizon horizon_from_json(const json& j) {
  AccuracyHorizon h;
  h.threshold = j.at("threshold");
  if (!(h.threshold > 0 && h.threshold <= 1))
    throw std::invalid_argument(fmt::format("horizon 'threshold' is {}, not in (0, 1]", h.threshold));
  h.near = distance_at(j, "near");
  h.far = distance_at(j, "far");
  h.tensor = j.at("tensor");
  const std::optional<long> reach = distance_at(j, "reach");
  if (!reach || h.near.has_value() != h.far.has_value() || (h.near && *h.near > *h.far))
    throw std::invalid_argument("horizon: 'near' and 'far' must both be null or near <= far, and 'reach' given");
  h.reach = *reach;
  return h;
}

json record_to_json(const Record& r) {
  json tensors = json::array();
  for (const TensorStats& t : r.tensors) tensors.push_back(tensor_to_json(t));
  json j = {{"candidate", r.candidate}, {"case_id", r.case_id}, {"case", r.params},
            {"seed", r.seed}, {"dtype", dtype_name(r.dtype)}, {"pass", pass_name(r.pass)},
            {"outcome", outcome_name(r.outcome)},
            {"message", r.message}, {"max_ratio", r.max_ratio}, {"tensors", tensors},
            {"shape", nullptr}, {"range", nullptr},
            {"timing", {{"inputs_s", r.timing.inputs_s}, {"golden_s", r.timing.golden_s}, {"candidate_s", r.timing.candidate_s},
                        {"compare_s", r.timing.compare_s}}}};
  if (r.shape) {
    j["shape"] = {{"tensor", r.shape->tensor}, {"expected", r.shape->expected},
                  {"actual", r.shape->actual}, {"what", r.shape->what},
                  {"relation", r.shape->relation}};
  }
  if (r.range) {
    j["range"] = {{"tensor", r.range->tensor}, {"count", r.range->count},
                  {"first_position", r.range->first_position},
                  {"largest_golden", r.range->largest_golden},
                  {"in_range_outcome", r.range->in_range_outcome}};
  }
  if (r.diagnosis) j["diagnosis"] = diagnosis_to_json(*r.diagnosis);
  if (r.drift) j["drift"] = drift_to_json(*r.drift);
  if (r.stream) j["stream"] = stream_to_json(*r.stream);
  if (r.packed) j["packed"] = packed_to_json(*r.packed);
  if (r.horizon) j["horizon"] = horizon_to_json(*r.horizon);
  return j;
}

Record record_from_json(const json& j) {
  Record r;
  r.candidate = j.at("candidate");
  r.case_id = j.at("case_id");
  r.params = j.at("case").get<Case>();
  r.seed = j.at("seed");
  const auto dtype = parse_dtype(j.at("dtype").get<std::string>());
  const auto outcome = parse_outcome(j.at("outcome").get<std::string>());
  if (!dtype || !outcome) throw std::invalid_argument("unknown dtype or outcome in record " + r.case_id);
  r.dtype = *dtype;
  r.outcome = *outcome;
  // Absent in files written before the backward pass existed: forward.
  if (j.contains("pass")) {
    const auto pass = parse_pass(j.at("pass").get<std::string>());
    if (!pass) throw std::invalid_argument("unknown pass in record " + r.case_id);
    r.pass = *pass;
  }
  r.message = j.at("message");
  r.max_ratio = j.at("max_ratio");
  for (const json& t : j.at("tensors")) r.tensors.push_back(tensor_from_json(t));
  if (const json& s = j.at("shape"); !s.is_null()) {
    r.shape = ShapeIssue{s.at("tensor"), s.at("expected"), s.at("actual"), s.at("what"),
                         s.at("relation")};
  }
  if (const json& g = j.at("range"); !g.is_null()) {
    r.range = RangeIssue{g.at("tensor"), count_at(g, "count"), g.at("first_position"),
                         g.at("largest_golden"), g.at("in_range_outcome")};
  }
  const json& t = j.at("timing");
  r.timing = {t.value("inputs_s", 0.0), t.at("golden_s"), t.at("candidate_s"), t.at("compare_s")};
  // Absent in files written before diagnoses existed.
  if (j.contains("diagnosis") && !j.at("diagnosis").is_null()) r.diagnosis = diagnosis_from_json(j.at("diagnosis"));
  if (j.contains("drift") && !j.at("drift").is_null()) r.drift = drift_from_json(j.at("drift"));
  if (j.contains("stream") && !j.at("stream").is_null()) r.stream = stream_from_json(j.at("stream"));
  if (j.contains("packed") && !j.at("packed").is_null()) r.packed = packed_from_json(j.at("packed"));
  // Absent in files written before the accuracy horizon existed.
  if (j.contains("horizon") && !j.at("horizon").is_null()) r.horizon = horizon_from_json(j.at("horizon"));
  return r;
}

json run_to_json(const RunInfo& run) {
  json tolerance = json::object();
  for (const auto& [dtype, spec] : run.tolerance) tolerance[dtype] = spec_to_json(spec);
  return {{"tool_version", run.tool_version}, {"git_commit", run.git_commit},
          {"grid_name", run.grid_name}, {"grid_source", run.grid_source},
          {"grid_fingerprint", run.grid_fingerprint}, {"candidates", run.candidates},
          {"dtypes", run.dtypes}, {"tolerance", tolerance}, {"machine", run.machine},
          {"started_at", run.started_at}, {"shard", run.shard},
          {"accept_conventions", run.accept_conventions}, {"logit_rows", run.logit_rows},
          {"horizon_threshold", run.horizon_threshold}, {"candidate_code", run.candidate_code}};
}

RunInfo run_from_json(const json& j) {
  RunInfo run;
  run.tool_version = j.at("tool_version");
  run.git_commit = j.at("git_commit");
  run.grid_name = j.at("grid_name");
  run.grid_source = j.at("grid_source");
  run.grid_fingerprint = j.at("grid_fingerprint");
  run.candidates = j.at("candidates").get<std::vector<std::string>>();
  run.dtypes = j.at("dtypes").get<std::vector<std::string>>();
  for (const auto& [dtype, spec] : j.at("tolerance").items()) run.tolerance[dtype] = spec_from_json(spec);
  run.machine = j.at("machine");
  run.started_at = j.at("started_at");
  run.shard = j.at("shard");
  // Absent in files written before resume compared them: such runs cannot be resumed.
  if (j.contains("accept_conventions")) run.accept_conventions = j.at("accept_conventions").get<std::vector<std::string>>();
  if (j.contains("logit_rows")) run.logit_rows = count_at(j, "logit_rows");
  // Absent in files written before resume compared candidates' code.
  if (j.contains("candidate_code"))
    run.candidate_code = j.at("candidate_code").get<std::map<std::string, std::string>>();
  // Absent in files written before the accuracy horizon: 0, no horizons.
  if (j.contains("horizon_threshold")) {
    run.horizon_threshold = j.at("horizon_threshold");
    if (!(run.horizon_threshold >= 0 && run.horizon_threshold <= 1))
      throw std::invalid_argument(fmt::format("'horizon_threshold' is {}, not in [0, 1]", run.horizon_threshold));
  }
  return run;
}

}  // namespace xposcheck
