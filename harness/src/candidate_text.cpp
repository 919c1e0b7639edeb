#include "xposcheck/harness/candidate_text.hpp"

#include <cstdint>
#include <stdexcept>

#include <fmt/format.h>

#include "xposcheck/harness/utf8.hpp"

namespace xposcheck {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

bool is_control(char32_t cp) { return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F); }

}  // namespace

std::string valid_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (std::size_t i = 0; i < bytes.size();) {
    char32_t cp = 0;
    const std::size_t n = utf8_sequence(bytes, i, cp);
    if (n == 0) out += kReplacement;
    else out.append(bytes.substr(i, n));
    i += n == 0 ? 1 : n;
  }
  return out;
}

std::string candidate_text(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (std::size_t i = 0; i < bytes.size();) {
    char32_t cp = 0;
    const std::size_t n = utf8_sequence(bytes, i, cp);
    if (n == 0) {
      out += kReplacement;
      ++i;
      continue;
    }
    if (cp == '\n' || cp == '\t' || !is_control(cp)) out.append(bytes.substr(i, n));
    else if (cp < 0x80) out += fmt::format("\\x{:02x}", static_cast<unsigned>(cp));
    else out += fmt::format("\\u{:04x}", static_cast<unsigned>(cp));
    i += n;
  }
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
