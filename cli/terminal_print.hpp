#pragma once
// fmt::print for text that may hold names, ids or messages read from files or written
// by candidates: the formatted text goes through terminal_text (control and bidi
// characters escaped, newlines kept) before it reaches the terminal.
#include <cstdio>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "xposcheck/harness/terminal_text.hpp"

namespace xposcheck::cli {

template <typename... Args>
void print_text(std::FILE* file, fmt::format_string<Args...> format, Args&&... args) {
  std::fputs(terminal_text(fmt::format(format, std::forward<Args>(args)...)).c_str(), file);
}

template <typename... Args>
void print_text(fmt::format_string<Args...> format, Args&&... args) {
  print_text(stdout, format, std::forward<Args>(args)...);
}

}  // namespace xposcheck::cli
