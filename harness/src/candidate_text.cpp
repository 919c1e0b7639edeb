#include "xposcheck/harness/candidate_text.hpp"

#include <cstdint>
#include <stdexcept>

#include <fmt/format.h>

#include "xposcheck/harness/utf8.hpp"

namespace xposcheck {
namespace {


bool is_control(char32_t cp) { return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F); }

}  // namespace

std::string valid_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for_each_utf8(
      bytes, [&](char32_t, std::string_view sequence) { out += sequence; },
      [&](unsigned char) { out += kUtf8Replacement; });
  return out;
}

std::string candidate_text(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for_each_utf8(
      bytes,
      [&](char32_t cp, std::string_view sequence) {
        if (cp == '\n' || cp == '\t' || !is_control(cp)) out += sequence;
        else if (cp < 0x80) out += fmt::format("\\x{:02x}", static_cast<unsigned>(cp));
        else out += fmt::format("\\u{:04x}", static_cast<unsigned>(cp));
      },
      [&](unsigned char) { out += kUtf8Replacement; });
  return out;
}

void check_candidate_name(const std::string& name, const std::string& what) {
  if (name.empty()) throw std::invalid_argument(what + ": a candidate name cannot be empty");
  const std::string clean = candidate_text(name);
  if (clean != name || name.find_first_of("\n\t") != std::string::npos) {
    throw std::invalid_argument(fmt::format(
        "{}: the candidate name \"{}\" holds control characters or invalid UTF-8", what, clean));
  }
}

}  // namespace xposcheck
