#include "xposcheck/harness/terminal_text.hpp"

#include <fmt/format.h>

#include "xposcheck/harness/utf8.hpp"

namespace xposcheck {
namespace {

bool unsafe(char32_t cp) {
  if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) return true;
  return cp == 0x061C || cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) ||
         (cp >= 0x2066 && cp <= 0x2069);
}

}  // namespace

std::string terminal_text(std::string_view s, bool keep_newlines) {
  std::string out;
  out.reserve(s.size());
  for_each_utf8(
      s,
      [&](char32_t cp, std::string_view bytes) {
        if (cp == '\n' && keep_newlines) out += '\n';
        else if (cp == '\t') out += '\t';
        else if (!unsafe(cp)) out += bytes;
        else if (cp < 0x100) out += fmt::format("\\x{:02x}", static_cast<unsigned>(cp));
        else out += fmt::format("\\u{{{:04x}}}", static_cast<unsigned>(cp));
      },
      [&](unsigned char byte) { out += fmt::format("\\x{:02x}", byte); });
  return out;
}

}  // namespace xposcheck
