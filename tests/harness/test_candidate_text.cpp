// candidate_text: the one way candidate bytes enter the harness.
#include <catch2/catch.hpp>

#include "xposcheck/harness/candidate_text.hpp"

using namespace xposcheck;

TEST_CASE("candidate text is valid UTF-8 with its control characters escaped", "[text]") {
  CHECK(candidate_text("plain\ttext\nline") == "plain\ttext\nline");
  CHECK(candidate_text("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80") == "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  CHECK(candidate_text("\xFF\xFE") == "\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(candidate_text("\x1B[2J\r\x7F") == "\\x1b[2J\\x0d\\x7f");
  CHECK(candidate_text("\xC2\x85") == "\\u0085");                      // C1 NEL
  CHECK(candidate_text("\xC0\xAF") == "\xEF\xBF\xBD\xEF\xBF\xBD");      // overlong '/'
  CHECK(candidate_text("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  CHECK(candidate_text("end\xE2\x82") == "end\xEF\xBF\xBD\xEF\xBF\xBD");  // cut sequence
  CHECK(candidate_text(std::string_view("a\0b", 3)) == "a\\x00b");
  // Idempotent: text that went through once passes unchanged.
  const std::string once = candidate_text("\xFF\x1B x");
  CHECK(candidate_text(once) == once);
  CHECK(valid_utf8("\xFF\x1B\n") == "\xEF\xBF\xBD\x1B\n");
}

TEST_CASE("candidate names must be non-empty printable UTF-8", "[text]") {
  CHECK_NOTHROW(check_candidate_name("torch-\xC3\xA9", "--candidate-name"));
  CHECK_THROWS_WITH(check_candidate_name("", "--candidate-name"),
                    "--candidate-name: a candidate name cannot be empty");
  CHECK_THROWS_WITH(check_candidate_name("evil\x1B[2J", "--candidate-name"),
                    Catch::Contains("--candidate-name") && Catch::Contains("evil\\x1b[2J") &&
                        Catch::Contains("control characters"));
  CHECK_THROWS(check_candidate_name("two\nlines", "x"));
  CHECK_THROWS(check_candidate_name("\xFF", "x"));
}
