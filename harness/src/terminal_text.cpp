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
  for (std::size_t i = 0; i < s.size();) {
    char32_t cp = 0;
    const std::size_t len = utf8_sequence(s, i, cp);
    if (len == 0) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(s[i++]));
      continue;
    }
    if (cp == '\n' && keep_newlines) out += '\n';
    else if (cp == '\t') out += '\t';
    else if (!unsafe(cp)) out.append(s.substr(i, len));
    else if (cp < 0x100) out += fmt::format("\\x{:02x}", static_cast<unsigned>(cp));
    else out += fmt::format("\\u{{{:04x}}}", static_cast<unsigned>(cp));
    i += len;
  }
  return out;
}

}  // namespace xposcheck
