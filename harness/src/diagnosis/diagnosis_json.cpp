#include "diagnosis/diagnosis_json.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>

namespace xposcheck {
namespace {

using nlohmann::json;

// Six significant digits: the summaries are read by people and reports, and the results
// file stays small. JSON has no infinity: a score that never fit may be infinite.
json number(double v) {
  if (!std::isfinite(v)) return v > 0 ? "inf" : "nan";
  return std::strtod(fmt::format("{:.6g}", v).c_str(), nullptr);
}
double number_from(const json& j) {
  if (j.is_number()) return j.get<double>();
  return j.get<std::string>() == "inf" ? INFINITY : std::nan("");
}

json optional_number(const std::optional<double>& v) { return v ? json(*v) : json(); }
json optional_number(const std::optional<long>& v) { return v ? json(*v) : json(); }
std::optional<double> optional_from(const json& j, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) return std::nullopt;
  return j.at(key).get<double>();
}

// [slope, intercept, residual]
json line_to_json(const LineFit& f) {
  return {number(f.slope), number(f.intercept), number(f.residual)};
}
LineFit line_from_json(const json& j) {
  return {number_from(j.at(0)), number_from(j.at(1)), number_from(j.at(2))};
}

json score_to_json(const HypothesisScore& s) {
  return {{"name", s.name},
          {"fits", s.fits},
          {"max_ratio", number(s.max_ratio)},
          {"compared", s.compared},
          {"over", s.over}};
}
HypothesisScore score_from_json(const json& j) {
  return {j.at("name"), j.at("fits"), number_from(j.at("max_ratio")), j.at("compared"),
          j.at("over")};
}

json part_to_json(const TensorDecomposition& t) {
  json fits = json::array();
  for (const FrequencyFit& f : t.fits) {
    fits.push_back({{"pair", f.pair},
                    {"omega", number(f.omega)},
                    {"lambda", number(f.lambda)},
                    {"angle", line_to_json(f.angle)},
                    {"log_scale", line_to_json(f.log_scale)}});
  }
  return {{"tensor", t.tensor},
          {"pairs_used", t.pairs_used},
          {"pairs_skipped", t.pairs_skipped},
          {"max_angle_error", number(t.max_angle_error)},
          {"max_log_scale_error", number(t.max_log_scale_error)},
          {"worst_angle_position", t.worst_angle_position},
          {"worst_angle_pair", t.worst_angle_pair},
          {"angle_error_per_phi_eps", number(t.angle_error_per_phi_eps)},
          {"passthrough_max_rel_change", number(t.passthrough_max_rel_change)},
          {"fits", fits}};
}

TensorDecomposition part_from_json(const json& j) {
  TensorDecomposition t;
  t.tensor = j.at("tensor");
  t.pairs_used = j.at("pairs_used");
  t.pairs_skipped = j.at("pairs_skipped");
  t.max_angle_error = number_from(j.at("max_angle_error"));
  t.max_log_scale_error = number_from(j.at("max_log_scale_error"));
  t.worst_angle_position = j.at("worst_angle_position");
  t.worst_angle_pair = j.at("worst_angle_pair");
  t.angle_error_per_phi_eps = number_from(j.at("angle_error_per_phi_eps"));
  t.passthrough_max_rel_change = number_from(j.at("passthrough_max_rel_change"));
  for (const json& f : j.at("fits")) {
    t.fits.push_back({f.at("pair"), number_from(f.at("omega")), number_from(f.at("lambda")),
                      line_from_json(f.at("angle")), line_from_json(f.at("log_scale"))});
  }
  return t;
}

}  // namespace

json diagnosis_to_json(const Diagnosis& d) {
  json tried = json::array(), parts = json::array();
  for (const HypothesisScore& s : d.tried) tried.push_back(score_to_json(s));
  for (const TensorDecomposition& t : d.decomposition) parts.push_back(part_to_json(t));
  const Estimates& e = d.estimates;
  return {{"verdict", d.verdict},
          {"kind", diagnosis_kind_name(d.kind)},
          {"explanation", d.explanation},
          {"evidence", d.evidence},
          {"convention", d.convention},
          {"grid_setting", d.grid_setting},
          {"accepted", d.accepted},
          {"spec", score_to_json(d.spec)},
          {"tried", tried},
          {"estimates",
           {{"query_shift", optional_number(e.query_shift)},
            {"key_shift", optional_number(e.key_shift)},
            {"query_centre", optional_number(e.query_centre)},
            {"key_centre", optional_number(e.key_centre)},
            {"query_scale_factor", optional_number(e.query_scale_factor)},
            {"key_scale_factor", optional_number(e.key_scale_factor)},
            {"base", optional_number(e.base)},
            {"max_frequency_error", optional_number(e.max_frequency_error)},
            {"first_changed_feature", optional_number(e.first_changed_feature)},
            {"last_changed_feature", optional_number(e.last_changed_feature)},
            {"passthrough_pair", optional_number(e.passthrough_pair)}}},
          {"decomposition", parts},
          {"diagnose_s", number(d.seconds)}};
}

Diagnosis diagnosis_from_json(const json& j) {
  Diagnosis d;
  d.verdict = j.at("verdict");
  const auto kind = parse_diagnosis_kind(j.at("kind").get<std::string>());
  if (!kind) throw std::invalid_argument("unknown diagnosis kind " + j.at("kind").dump());
  d.kind = *kind;
  d.explanation = j.at("explanation");
  d.evidence = j.at("evidence");
  d.convention = j.at("convention");
  if (j.contains("grid_setting")) d.grid_setting = j.at("grid_setting");
  d.accepted = j.at("accepted");
  d.spec = score_from_json(j.at("spec"));
  for (const json& s : j.at("tried")) d.tried.push_back(score_from_json(s));
  const json& e = j.at("estimates");
  d.estimates.query_shift = optional_from(e, "query_shift");
  d.estimates.key_shift = optional_from(e, "key_shift");
  d.estimates.query_centre = optional_from(e, "query_centre");
  d.estimates.key_centre = optional_from(e, "key_centre");
  d.estimates.query_scale_factor = optional_from(e, "query_scale_factor");
  d.estimates.key_scale_factor = optional_from(e, "key_scale_factor");
  d.estimates.base = optional_from(e, "base");
  d.estimates.max_frequency_error = optional_from(e, "max_frequency_error");
  if (auto f = optional_from(e, "first_changed_feature")) d.estimates.first_changed_feature = static_cast<long>(*f);
  if (auto l = optional_from(e, "last_changed_feature")) d.estimates.last_changed_feature = static_cast<long>(*l);
  if (auto j = optional_from(e, "passthrough_pair")) d.estimates.passthrough_pair = static_cast<long>(*j);
  for (const json& t : j.at("decomposition")) d.decomposition.push_back(part_from_json(t));
  d.seconds = number_from(j.at("diagnose_s"));
  return d;
}

}  // namespace xposcheck
