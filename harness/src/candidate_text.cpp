#include "xposcheck/harness/candidate_text.hpp"

#include <cstdint>
#include <stdexcept>

#include <fmt/format.h>

namespace xposcheck {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// The length of the valid UTF-8 sequence starting at s[i] and its code point, or 0
// when the bytes there are not one (overlong forms and surrogates included).
std::size_t utf8_sequence(std::string_view s, std::size_t i, std::uint32_t& cp) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  const std::size_t n = b0 >= 0xC2 && b0 <= 0xDF ? 2 : b0 >= 0xE0 && b0 <= 0xEF ? 3
                        : b0 >= 0xF0 && b0 <= 0xF4 ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  cp = b0 & (0x7F >> n);
  for (std::size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  const std::uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < least[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

bool is_control(std::uint32_t cp) { return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F); }

}  // namespace

std::string valid_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (std::size_t i = 0; i < bytes.size();) {
    std::uint32_t cp = 0;
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
    std::uint32_t cp = 0;
    const std::size_t n = utf8_sequence(bytes, i, cp);
    if (n == 0) {
      out += kReplacement;
      ++i;
      continue;
    }
    if (cp == '\n' || cp == '\t' || !is_control(cp)) out.append(bytes.substr(i, n));
    else out += cp < 0x80 ? fmt::format("\\x{:02x}", cp) : fmt::format("\\u{:04x}", cp);
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
