#pragma once
// The one UTF-8 decoder of the text that candidates and files bring in: candidate
// text, terminal text and the reports' escaping all read code points through it.
#include <cstddef>
#include <string_view>

namespace xposcheck {

// The length of the valid UTF-8 sequence starting at s[i] and its code point, or 0
// when the bytes there are not one (truncated, overlong, a surrogate, beyond U+10FFFF).
std::size_t utf8_sequence(std::string_view s, std::size_t i, char32_t& cp);

inline constexpr std::string_view kUtf8Replacement = "\xEF\xBF\xBD";  // U+FFFD

// Walks s in order: on_sequence(code point, its bytes) for each valid sequence,
// on_invalid(byte) for each byte that starts none.
template <class OnSequence, class OnInvalid>
void for_each_utf8(std::string_view s, OnSequence&& on_sequence, OnInvalid&& on_invalid) {
  for (std::size_t i = 0; i < s.size();) {
    char32_t cp = 0;
    const std::size_t n = utf8_sequence(s, i, cp);
    if (n == 0) {
      on_invalid(static_cast<unsigned char>(s[i++]));
      continue;
    }
    on_sequence(cp, s.substr(i, n));
    i += n;
  }
}

}  // namespace xposcheck
