#include "text_escape.hpp"

#include <cctype>
#include <cstdint>

#include "xposcheck/harness/utf8.hpp"

namespace xposcheck::text {
namespace {


// XML 1.0's Char production, less DEL and the C1 controls, which render as nothing
// useful in a browser or CI dashboard.
bool allowed(char32_t cp) {
  if (cp == 0x9 || cp == 0xA || cp == 0xD) return true;
  if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) return false;
  if (cp <= 0xD7FF) return true;
  if (cp >= 0xE000 && cp <= 0xFFFD) return true;
  return cp >= 0x10000 && cp <= 0x10FFFF;
}

}  // namespace

std::string clean_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for_each_utf8(
      s, [&](char32_t cp, std::string_view bytes) { if (allowed(cp)) out += bytes; },
      [&](unsigned char) { out += kUtf8Replacement; });
  return out;
}

std::string markup(std::string_view s) {
  const std::string clean = clean_utf8(s);
  std::string out;
  out.reserve(clean.size() + clean.size() / 8);
  for (char c : clean) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string first_line(std::string_view s, std::size_t max_chars) {
  const std::size_t eol = s.find_first_of("\r\n");
  std::string_view line = s.substr(0, eol);
  if (line.size() <= max_chars && eol == std::string_view::npos) return std::string(line);
  if (line.size() <= max_chars) return std::string(line) + " ...";
  std::size_t cut = max_chars;
  // Back up to the start of a UTF-8 sequence so the cut never splits a character.
  while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;
  return std::string(line.substr(0, cut)) + "...";
}

std::string markdown_cell(std::string_view s, std::size_t max_chars) {
  std::string flat = clean_utf8(s);
  for (char& c : flat) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  if (flat.size() > max_chars) flat = first_line(flat, max_chars);
  std::string out;
  out.reserve(flat.size() + 16);
  const auto word = [&](std::size_t k) {
    return k < flat.size() && (std::isalnum(static_cast<unsigned char>(flat[k])) != 0);
  };
  for (std::size_t i = 0; i < flat.size(); ++i) {
    const char c = flat[i];
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '_':
        // Inside a word ("k_out") an underscore never starts emphasis: keep it readable.
        if (i > 0 && word(i - 1) && word(i + 1)) {
          out += c;
          break;
        }
        [[fallthrough]];
      case '|': case '\\': case '`': case '*': case '[': case ']':
        out += '\\';
        out += c;
        break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace xposcheck::text
