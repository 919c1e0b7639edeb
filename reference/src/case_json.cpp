#include "xposcheck/reference/case_json.hpp"

#include <string>

namespace xposcheck {

nlohmann::json case_to_json(const Case& c, CaseForm form) {
  nlohmann::json j = {
      {"head_dim", c.head_dim},   {"rotary_dim", c.rotary()},  {"base", c.base},
      {"base_rescale", c.base_rescale}, {"interpolation", c.interpolation},
      {"xpos", c.xpos},           {"scale_base", c.scale_base},
      {"layout", std::string(layout_name(c.layout))},
      {"seq_len", c.seq_len},     {"mem_len", c.mem_len},      {"center", c.centre()},
      {"batch", c.batch},         {"heads", c.heads}};
  if (form == CaseForm::resolved || c.first_position) j["first_position"] = c.first_key_position();
  if (c.stream) j["stream"] = {{"prefill", c.stream->prefill}, {"step_rows", c.stream->step_rows}};
  return j;
}

void to_json(nlohmann::json& j, const Case& c) { j = case_to_json(c, CaseForm::stored); }

void from_json(const nlohmann::json& j, Case& c) {
  c = Case{};
  c.head_dim = j.at("head_dim");
  c.rotary_dim = j.at("rotary_dim").get<long>();
  c.base = j.at("base");
  c.base_rescale = j.at("base_rescale");
  c.interpolation = j.at("interpolation");
  c.xpos = j.at("xpos");
  c.scale_base = j.at("scale_base");
  const auto layout = parse_layout(j.at("layout").get<std::string>());
  if (!layout) throw std::invalid_argument("unknown layout " + j.at("layout").dump());
  c.layout = *layout;
  c.seq_len = j.at("seq_len");
  c.mem_len = j.at("mem_len");
  c.center = j.at("center").get<long>();
  if (j.contains("first_position")) c.first_position = j.at("first_position").get<long>();
  c.batch = j.at("batch");
  c.heads = j.at("heads");
  if (j.contains("stream")) {
    const nlohmann::json& s = j.at("stream");
    c.stream = StreamShape{s.at("prefill").get<long>(), s.at("step_rows").get<long>()};
  }
}

}  // namespace xposcheck
