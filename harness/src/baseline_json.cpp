// The baseline file (docs/baselines.md) and the JSON of drift evidence and envelopes.
#include <cmath>
#include <fmt/format.h>
#include <fstream>
#include <sstream>

#include "baseline_detail.hpp"
#include "results_json.hpp"
#include "xposcheck/reference/atomic_file.hpp"

namespace xposcheck {

using nlohmann::json;
using nlohmann::ordered_json;
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kVerdictNames[] = {"unchanged", "regressed", "improved", "new"};

// JSON has no infinity: non-finite errors travel as strings, as in results files.
ordered_json number(double v) {
  if (std::isfinite(v)) return v;
  return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
}

template <class Json>
double number_from(const Json& j) {
  if (j.is_number()) return j.template get<double>();
  const std::string s = j.template get<std::string>();
  if (s == "nan") return std::nan("");
  if (s == "inf" || s == "-inf") return s == "inf" ? INFINITY : -INFINITY;
  throw std::invalid_argument(fmt::format("'{}' is not a number", s));
}

ordered_json limit_json(const Envelope& e, const EnvelopeLimit& l) {
  return {{"candidate", e.candidate}, {"dtype", dtype_name(e.dtype)}, {"mem_len", l.mem_len},
          {"max_seq_len", l.max_seq_len}, {"first_failing_seq_len", l.first_failing_seq_len},
          {"first_failure", l.first_failure ? ordered_json(outcome_name(*l.first_failure)) : ordered_json()},
          {"first_failure_case", l.first_failure_case}};
}

ordered_json entry_json(const BaselineEntry& e) {
  ordered_json max = ordered_json::object(), rms = ordered_json::object();
  for (const BaselineTensor& t : e.tensors) {
    max[t.name] = number(t.max_ulps);
    rms[t.name] = number(t.rms_ulps);
  }
  ordered_json j = {{"candidate", e.candidate}, {"case", e.case_id}, {"dtype", dtype_name(e.dtype)}};
  // Only backward entries say their pass: forward baselines keep their bytes.
  if (e.pass != Pass::forward) j["pass"] = pass_name(e.pass);
  j["outcome"] = outcome_name(e.outcome);
  j["max_ulps"] = max;
  j["rms_ulps"] = rms;
  return j;
}

// Parsed keeping the key order, so that tensors keep the order they were written in.
using ojson = nlohmann::ordered_json;

// Field access that says which field of which entry is missing or wrong.
const ojson& field(const ojson& j, const char* key, const std::string& where) {
  if (!j.is_object() || !j.contains(key)) throw std::invalid_argument(fmt::format("{}: missing \"{}\"", where, key));
  return j.at(key);
}

template <class T>
T typed(const ojson& j, const char* key, const std::string& where) {
  try {
    return field(j, key, where).get<T>();
  } catch (const ojson::exception&) {
    throw std::invalid_argument(fmt::format("{}: \"{}\" has the wrong type ({})", where, key, j.at(key).dump()));
  }
}

DType dtype_field(const ojson& j, const std::string& where) {
  const auto t = parse_dtype(typed<std::string>(j, "dtype", where));
  if (!t) throw std::invalid_argument(fmt::format("{}: unknown dtype {}", where, j.at("dtype").dump()));
  return *t;
}

Outcome outcome_field(const ojson& j, const char* key, const std::string& where) {
  const auto o = parse_outcome(typed<std::string>(j, key, where));
  if (!o) throw std::invalid_argument(fmt::format("{}: unknown outcome {}", where, j.at(key).dump()));
  return *o;
}

BaselineEntry entry_from(const ojson& j, std::size_t index) {
  const std::string where = fmt::format("entry {}", index + 1);
  BaselineEntry e{typed<std::string>(j, "candidate", where), typed<std::string>(j, "case", where),
                  dtype_field(j, where), outcome_field(j, "outcome", where), {}, Pass::forward};
  if (j.contains("pass")) {
    const auto pass = parse_pass(typed<std::string>(j, "pass", where));
    if (!pass) throw std::invalid_argument(fmt::format("{}: unknown pass {}", where, j.at("pass").dump()));
    e.pass = *pass;
  }
  const ojson& max = field(j, "max_ulps", where);
  const ojson& rms = field(j, "rms_ulps", where);
  for (const auto& [name, value] : max.items()) {
    e.tensors.push_back({name, number_from(value), number_from(field(rms, name.c_str(), where + " rms_ulps"))});
  }
  return e;
}

void add_limit(Baseline& b, const ojson& j, std::size_t index) {
  const std::string where = fmt::format("envelope {}", index + 1);
  const std::string candidate = typed<std::string>(j, "candidate", where);
  const DType dtype = dtype_field(j, where);
  if (b.envelopes.empty() || b.envelopes.back().candidate != candidate || b.envelopes.back().dtype != dtype) {
    b.envelopes.push_back({candidate, dtype, {}});
  }
  EnvelopeLimit l{typed<long>(j, "mem_len", where), typed<long>(j, "max_seq_len", where),
                  typed<long>(j, "first_failing_seq_len", where), std::nullopt,
                  typed<std::string>(j, "first_failure_case", where)};
  if (!field(j, "first_failure", where).is_null()) l.first_failure = outcome_field(j, "first_failure", where);
  b.envelopes.back().limits.push_back(l);
}

void check_header(const ojson& j) {
  if (!j.is_object() || !j.contains("schema")) {
    throw BaselineError("not an xposcheck baseline (no \"schema\": \"xposcheck-baseline\")");
  }
  const ojson& schema = j.at("schema");
  if (schema == "xposcheck-results") {
    throw BaselineError("this is a results file, not a baseline: make one with `xposcheck baseline save "
                        "RESULTS -o BASELINE`");
  }
  if (schema != kBaselineSchema) {
    throw BaselineError(fmt::format("not an xposcheck baseline (schema {}, expected \"{}\")", schema.dump(),
                                    kBaselineSchema));
  }
  const ojson version = j.value("schema_version", ojson());
  if (version != kBaselineSchemaVersion) {
    throw BaselineError(fmt::format("baseline schema version {} is not supported (this xposcheck reads "
                                    "version {})", version.dump(), kBaselineSchemaVersion));
  }
}

Baseline baseline_from(const ojson& j) {
  check_header(j);
  Baseline b;
  try {
    b.tool_version = typed<std::string>(j, "tool_version", "header");
    const ojson& grid = field(j, "grid", "header");
    b.grid_name = typed<std::string>(grid, "name", "grid");
    b.grid_fingerprint = typed<std::string>(grid, "fingerprint", "grid");
    for (const auto& [dtype, spec] : field(j, "tolerance", "header").items()) b.tolerance[dtype] = spec_from_json(json(spec));
    const ojson& limits = field(j, "envelopes", "header");
    for (std::size_t i = 0; i < limits.size(); ++i) add_limit(b, limits.at(i), i);
    const ojson& entries = field(j, "entries", "header");
    for (std::size_t i = 0; i < entries.size(); ++i) b.entries.push_back(entry_from(entries.at(i), i));
  } catch (const BaselineError&) {
    throw;
  } catch (const std::exception& e) {
    throw BaselineError(fmt::format("malformed baseline: {}", e.what()));
  }
  return b;
}

}  // namespace

std::string_view verdict_name(DriftVerdict v) { return kVerdictNames[static_cast<std::size_t>(v)]; }

std::optional<DriftVerdict> parse_verdict(std::string_view name) {
  for (std::size_t i = 0; i < std::size(kVerdictNames); ++i) {
    if (kVerdictNames[i] == name) return static_cast<DriftVerdict>(i);
  }
  return std::nullopt;
}

std::string format_baseline(const Baseline& b) {
  ordered_json tolerance = ordered_json::object();
  for (const auto& [dtype, spec] : b.tolerance) tolerance[dtype] = ordered_json(spec_to_json(spec));
  std::ostringstream out;
  out << "{\n\"schema\": \"" << kBaselineSchema << "\",\n\"schema_version\": " << kBaselineSchemaVersion << ",\n"
      << "\"tool_version\": " << ordered_json(b.tool_version).dump() << ",\n"
      << "\"grid\": " << ordered_json{{"name", b.grid_name}, {"fingerprint", b.grid_fingerprint}}.dump() << ",\n"
      << "\"tolerance\": " << tolerance.dump() << ",\n\"envelopes\": [";
  const char* separator = "\n";
  for (const Envelope& e : b.envelopes) {
    for (const EnvelopeLimit& l : e.limits) {
      out << separator << limit_json(e, l).dump();
      separator = ",\n";
    }
  }
  out << "\n],\n\"entries\": [";
  separator = "\n";
  for (const BaselineEntry& e : b.entries) {
    out << separator << entry_json(e).dump();
    separator = ",\n";
  }
  out << "\n]\n}\n";
  return out.str();
}

Baseline parse_baseline(const std::string& text, const std::string& source) {
  ojson j;
  try {
    j = ojson::parse(text);
  } catch (const ojson::exception& e) {
    throw BaselineError(fmt::format("{}: not valid JSON: {}", source, e.what()));
  }
  try {
    return baseline_from(j);
  } catch (const BaselineError& e) {
    throw BaselineError(fmt::format("{}: {}", source, e.what()));
  }
}

void write_baseline(const fs::path& file, const Baseline& baseline) {
  write_atomically(file, format_baseline(baseline));
}

Baseline read_baseline(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw BaselineError(fmt::format("{}: cannot open baseline file", file.string()));
  std::ostringstream text;
  text << in.rdbuf();
  return parse_baseline(text.str(), file.string());
}

json drift_to_json(const DriftInfo& d) {
  json tensors = json::array();
  for (const TensorDrift& t : d.tensors) {
    tensors.push_back({{"name", t.name}, {"baseline_max", number(t.baseline_max)}, {"max", number(t.max)},
                       {"baseline_rms", number(t.baseline_rms)}, {"rms", number(t.rms)}});
  }
  return {{"verdict", verdict_name(d.verdict)},
          {"baseline_outcome", d.baseline_outcome ? json(outcome_name(*d.baseline_outcome)) : json()},
          {"note", d.note}, {"tensors", tensors}};
}

DriftInfo drift_from_json(const json& j) {
  DriftInfo d;
  const auto verdict = parse_verdict(j.at("verdict").get<std::string>());
  if (!verdict) throw std::invalid_argument("unknown drift verdict " + j.at("verdict").dump());
  d.verdict = *verdict;
  if (!j.at("baseline_outcome").is_null()) d.baseline_outcome = parse_outcome(j.at("baseline_outcome").get<std::string>());
  d.note = j.at("note");
  for (const json& t : j.at("tensors")) {
    d.tensors.push_back({t.at("name"), number_from(t.at("baseline_max")), number_from(t.at("max")),
                         number_from(t.at("baseline_rms")), number_from(t.at("rms"))});
  }
  return d;
}

json envelopes_to_json(const std::vector<Envelope>& envelopes) {
  json list = json::array();
  for (const Envelope& e : envelopes) {
    for (const EnvelopeLimit& l : e.limits) list.push_back(json(limit_json(e, l)));
  }
  return list;
}

}  // namespace xposcheck
