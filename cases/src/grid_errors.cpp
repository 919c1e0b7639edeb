// Located error messages for grid files: every problem names file, line and key so
// that a mistake in a long grid file is found without bisecting it.
#include <algorithm>
#include <cctype>
#include <sstream>

#include <fmt/format.h>

#include "grid_detail.hpp"

namespace xposcheck {

namespace {
std::string located(const std::string& file, long line, const std::string& key,
                    const std::string& problem) {
  std::string where = line > 0 ? fmt::format("{}:{}", file, line) : file;
  if (key.empty()) return fmt::format("{}: {}", where, problem);
  return fmt::format("{}: key '{}': {}", where, key, problem);
}
}  // namespace

GridError::GridError(std::string file_, long line_, std::string key_, const std::string& problem)
    : std::runtime_error(located(file_, line_, key_, problem)),
      file(std::move(file_)),
      line(line_),
      key(std::move(key_)) {}

}  // namespace xposcheck

namespace xposcheck::grid_detail {

long line_of(const toml::node& n) { return static_cast<long>(n.source().begin.line); }
long line_of(const toml::key& k) { return static_cast<long>(k.source().begin.line); }

void fail(const std::string& file, long line, std::string_view key, const std::string& problem) {
  throw GridError(file, line, std::string(key), problem);
}

std::vector<std::pair<const toml::key*, const toml::node*>> in_file_order(const toml::table& t) {
  std::vector<std::pair<const toml::key*, const toml::node*>> out;
  for (auto&& [key, node] : t) out.emplace_back(&key, &node);
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    const auto& pa = a.first->source().begin;
    const auto& pb = b.first->source().begin;
    return pa.line != pb.line ? pa.line < pb.line : pa.column < pb.column;
  });
  return out;
}

std::string describe(const toml::node& n) {
  std::ostringstream os;
  switch (n.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "a list";
    // Quoted as most grid files write strings, not in toml++'s 'literal' style.
    case toml::node_type::string: return fmt::format("string \"{}\"", *n.value_exact<std::string>());
    case toml::node_type::integer: os << "integer "; break;
    case toml::node_type::floating_point: os << "float "; break;
    case toml::node_type::boolean: os << "boolean "; break;
    default: os << "date/time "; break;
  }
  n.visit([&os](const auto& v) {
    if constexpr (toml::is_value<decltype(v)>) os << toml::toml_formatter{v};
  });
  return os.str();
}

namespace {
// Optimal string alignment distance: a transposition ("haed_dim") counts as one edit.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}
}  // namespace

std::string closest(std::string_view word, std::span<const std::string_view> choices) {
  std::string lower(word);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  std::string_view best;
  std::size_t best_distance = 0;
  for (std::string_view choice : choices) {
    std::size_t d = edit_distance(lower, choice);
    if (best.empty() || d < best_distance) {
      best = choice;
      best_distance = d;
    }
  }
  // A third of the word may be wrong: "seqlen", "mem_length" and "rotary" are typos,
  // "foo" is not.
  std::size_t allowed = std::max<std::size_t>(1, (word.size() + 2) / 3);
  return best_distance <= allowed ? std::string(best) : std::string();
}

std::string unknown_key_problem(std::string_view key, std::span<const std::string_view> valid) {
  std::string guess = closest(key, valid);
  if (!guess.empty()) return fmt::format("unknown key (did you mean '{}'?)", guess);
  std::string list;
  for (std::string_view v : valid) list += fmt::format("{}{}", list.empty() ? "" : ", ", v);
  return fmt::format("unknown key (valid keys here: {})", list);
}

}  // namespace xposcheck::grid_detail
