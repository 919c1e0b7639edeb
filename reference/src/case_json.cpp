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
  if (c.positions) j["positions"] = c.positions->keys;
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
  if (j.contains("positions")) {
    const nlohmann::json& p = j.at("positions");
    if (!p.is_array() || p.size() != static_cast<std::size_t>(c.key_rows()))
      throw std::invalid_argument("positions must be an array of M + N = " + std::to_string(c.key_rows()) + " integers");
    std::vector<long> keys;
    for (const nlohmann::json& v : p) {
      if (!v.is_number_integer()) throw std::invalid_argument("positions must be integers, got " + v.dump());
      keys.push_back(v.get<long>());
    }
    c.positions = PositionList::of(std::move(keys), c.seq_len);
  }
  if (j.contains("stream")) {
    const nlohmann::json& s = j.at("stream");
    c.stream = StreamShape{s.at("prefill").get<long>(), s.at("step_rows").get<long>()};
    // Read back from files: a stream's shape divides its length before any use of it.
    const bool whole = c.stream->step_rows >= 1 && c.stream->prefill >= 1 && c.stream->prefill < c.seq_len &&
                       (c.seq_len - c.stream->prefill) % c.stream->step_rows == 0;
    if (!whole) throw std::invalid_argument("stream " + s.dump() + " does not divide seq_len " + std::to_string(c.seq_len));
  }
}

}  // namespace xposcheck
