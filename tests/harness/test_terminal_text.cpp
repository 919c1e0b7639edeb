// terminal_text: what a results file or a candidate wrote reaches the terminal as
// visible escapes, never as ESC sequences or bidi overrides.
#include <catch2/catch.hpp>

#include "xposcheck/harness/terminal_text.hpp"

using xposcheck::terminal_text;

TEST_CASE("control characters are escaped, newlines and tabs kept") {
  CHECK(terminal_text("a\x1b[2Jb") == "a\\x1b[2Jb");
  CHECK(terminal_text("a\rb\x7f") == "a\\x0db\\x7f");
  CHECK(terminal_text("one\n\ttwo") == "one\n\ttwo");
  CHECK(terminal_text("one\ntwo", false) == "one\\x0atwo");
  CHECK(terminal_text("\xc2\x9b" "31m") == "\\x9b31m");  // C1 CSI
}

TEST_CASE("bidirectional controls are escaped, other UTF-8 kept") {
  CHECK(terminal_text("abc\xe2\x80\xae" "def") == "abc\\u{202e}def");
  CHECK(terminal_text("\xe2\x81\xa6x\xe2\x81\xa9") == "\\u{2066}x\\u{2069}");
  CHECK(terminal_text("fp16 \xc2\xb1 3 \xe2\x89\xa4 4") == "fp16 \xc2\xb1 3 \xe2\x89\xa4 4");
}

TEST_CASE("invalid UTF-8 bytes are escaped one by one") {
  CHECK(terminal_text("a\xff" "b") == "a\\xffb");
  CHECK(terminal_text("\xe2\x80") == "\\xe2\\x80");
  CHECK(terminal_text("\xed\xa0\x80") == "\\xed\\xa0\\x80");  // a surrogate
}
