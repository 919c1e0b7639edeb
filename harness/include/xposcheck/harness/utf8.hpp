#pragma once
// The one UTF-8 decoder of the text that candidates and files bring in: candidate
// text, terminal text and the reports' escaping all read code points through it.
#include <cstddef>
#include <string_view>

namespace xposcheck {

// The length of the valid UTF-8 sequence starting at s[i] and its code point, or 0
// when the bytes there are not one (truncated, overlong, a surrogate, beyond U+10FFFF).
std::size_t utf8_sequence(std::string_view s, std::size_t i, char32_t& cp);

}  // namespace xposcheck
