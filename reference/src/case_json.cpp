#include "xposcheck/reference/case_json.hpp"

#include <string>

namespace xposcheck {

namespace {

// Resolved (for candidates): every sequence's frame and centre spelled out.
nlohmann::json packed_to_json(const Case& c, CaseForm form) {
  nlohmann::json out = nlohmann::json::array();
  for (long i = 0; i < c.packed->count(); ++i) {
    const PackedSequence& s = c.packed->sequences[static_cast<std::size_t>(i)];
    nlohmann::json one = {{"seq_len", s.seq_len}, {"mem_len", s.mem_len}};
    const Case alone = c.sequence_case(i);
    if (form == CaseForm::resolved || s.first_position) one["first_position"] = alone.first_key_position();
    if (form == CaseForm::resolved || s.center) one["center"] = alone.centre();
    out.push_back(std::move(one));
  }
  return out;
}

std::optional<long> optional_long(const nlohmann::json& j, const char* key) {
  if (!j.contains(key)) return std::nullopt;
  return j.at(key).get<long>();
}

// Read back from files: the sequences must be the case's rows exactly before any row's
// position is looked up in them.
std::shared_ptr<const PackedBatch> packed_from_json(const nlohmann::json& p, long seq_len, long mem_len) {
  if (!p.is_array() || p.empty()) throw std::invalid_argument("packed must be a non-empty array of sequences");
  std::vector<PackedSequence> sequences;
  long n = 0, m = 0;
  for (const nlohmann::json& s : p) {
    PackedSequence one{s.at("seq_len").get<long>(), s.at("mem_len").get<long>(), optional_long(s, "first_position"),
                       optional_long(s, "center")};
    if (one.seq_len < 1 || one.mem_len < 0 || one.seq_len > seq_len || one.mem_len > mem_len)
      throw std::invalid_argument("packed sequence " + s.dump() + " does not fit seq_len " + std::to_string(seq_len) +
                                  " and mem_len " + std::to_string(mem_len));
    n += one.seq_len;
    m += one.mem_len;
    sequences.push_back(one);
  }
  if (n != seq_len || m != mem_len)
    throw std::invalid_argument("packed sequences hold N = " + std::to_string(n) + " and M = " + std::to_string(m) +
                                ", the case says seq_len " + std::to_string(seq_len) + " and mem_len " +
                                std::to_string(mem_len));
  return PackedBatch::of(std::move(sequences));
}

}  // namespace

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
  if (c.packed) j["packed"] = packed_to_json(c, form);
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
  // A packed batch's centres are its sequences'.
  if (!j.contains("packed")) c.center = j.at("center").get<long>();
  else c.packed = packed_from_json(j.at("packed"), c.seq_len, c.mem_len);
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
