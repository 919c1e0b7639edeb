#pragma once
// Everything a candidate says (its output, error records, plugin messages, exception
// texts, dtype names read from its files) is bytes it chose. It enters the harness
// through candidate_text() exactly once, so that messages, results JSON, JUnit,
// Markdown, HTML and the terminal only ever see valid, printable UTF-8.
#include <string>
#include <string_view>

namespace xposcheck {

// Valid UTF-8: each invalid byte becomes U+FFFD; control characters other than
// newline and tab (C0, DEL, C1: ESC, carriage return, ...) are written as "\x1b" or
// "\u0085", so that they cannot move the terminal's cursor or break a file format.
std::string candidate_text(std::string_view bytes);

// Only the first half of that: invalid bytes become U+FFFD, the rest is kept. For a
// candidate's JSON before it is parsed (its escapes stay JSON's to decode).
std::string valid_utf8(std::string_view bytes);

// Throws std::invalid_argument "<what>: <problem>" when a candidate name is empty,
// or holds control characters or invalid UTF-8 (it names files, report rows and
// terminal lines). `what` says where the name came from ("--candidate-name", "native
// plugin libx.so: the name from xposcheck_describe").
void check_candidate_name(const std::string& name, const std::string& what);

}  // namespace xposcheck
