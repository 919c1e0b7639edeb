#pragma once
// Escaping for the text formats the reporters write. Every string that comes from a
// candidate or a file (names, case ids, messages, tracebacks) passes through one of
// these before it reaches an output file.
#include <string>
#include <string_view>

namespace xposcheck::text {

// Valid UTF-8 holding only characters XML 1.0 allows (tab, newline, carriage return,
// U+0020..U+D7FF, U+E000..U+FFFD, U+10000..U+10FFFF): other control characters are
// dropped and invalid byte sequences become U+FFFD.
std::string clean_utf8(std::string_view s);

// Text content and attribute values of HTML and XML: & < > " ' escaped, after
// clean_utf8, so the result is safe both between tags and inside quoted attributes.
std::string markup(std::string_view s);

// One Markdown table cell: a single line, | and Markdown punctuation backslash-escaped,
// < > & as entities so no raw HTML survives; cut to max_chars characters with "...".
std::string markdown_cell(std::string_view s, std::size_t max_chars = 200);

// The first line of s, cut to max_chars (at a UTF-8 boundary) with "..." appended.
std::string first_line(std::string_view s, std::size_t max_chars);

}  // namespace xposcheck::text
