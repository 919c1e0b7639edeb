#pragma once
// Text from files and candidates (names, case ids, messages) printed to a terminal.
// A results file can carry ESC sequences that rewrite the screen or U+202E that
// reverses what follows, so every printer passes such text through terminal_text.
#include <string>
#include <string_view>

namespace xposcheck {

// s with control characters (C0 but newline, DEL, C1), bidirectional controls
// (U+061C, U+200E-F, U+202A-E, U+2066-9) and invalid UTF-8 bytes written as visible
// escapes: "\x1b", "\u{202e}". Newlines stay unless keep_newlines is false.
std::string terminal_text(std::string_view s, bool keep_newlines = true);

}  // namespace xposcheck
