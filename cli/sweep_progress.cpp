#include "sweep_progress.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <utility>

#include <fmt/format.h>

#include "xposcheck/harness/terminal_text.hpp"

namespace xposcheck::cli {
namespace {

constexpr int kBarWidth = 20;

std::string bar(std::size_t done, std::size_t total) {
  const int full = total ? static_cast<int>(kBarWidth * done / total) : kBarWidth;
  return fmt::format("[{}{}]", std::string(std::size_t(full), '#'), std::string(std::size_t(kBarWidth - full), '-'));
}

// The rate so far and the time left at that rate, or the time taken once done.
std::pair<std::string, std::string> pace(const Progress& p, double elapsed) {
  elapsed = std::max(elapsed, 1e-9);
  const double rate = double(p.done) / elapsed;
  std::string eta;
  // fmt rather than string +: GCC 12 warns (-Wrestrict, a false positive) on "..." + string.
  if (p.done == p.total) eta = fmt::format("done in {}", duration_text(elapsed));
  else if (p.done) eta = fmt::format("~{} left", duration_text(double(p.total - p.done) / rate));
  return {rate_text(rate), eta};
}

// A tick's work in flight: the oldest unit, and how many more.
std::string running_text(const Progress& p) {
  if (p.running.empty()) return "";
  const std::string more = p.running.size() > 1 ? fmt::format(" (+{} more)", p.running.size() - 1) : "";
  return fmt::format("running {}{}", p.running.front(), more);
}

// The parts that say something, with the separator between them.
std::string joined(std::initializer_list<std::string> parts, std::string_view separator) {
  std::string out;
  for (const std::string& part : parts) {
    if (part.empty()) continue;
    if (!out.empty()) out += separator;
    out += part;
  }
  return out;
}

}  // namespace

std::string rate_text(double per_s) {
  return per_s >= 10 ? fmt::format("{:.0f}/s", per_s) : fmt::format("{:.1f}/s", per_s);
}

std::string duration_text(double s) {
  if (s < 120) return fmt::format("{:.0f} s", s);
  if (s < 7200) return fmt::format("{:.0f} min", s / 60);
  return fmt::format("{:.1f} h", s / 3600);
}

ProgressSettings stderr_progress(ProgressStyle style) {
  ProgressSettings s;
  s.style = style;
  s.terminal = ::isatty(STDERR_FILENO) != 0;
  winsize size{};
  if (s.terminal && ::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0) s.columns = size.ws_col;
  s.clock = [] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  };
  s.write = [](std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), stderr);
    std::fflush(stderr);
  };
  return s;
}

ProgressPrinter::ProgressPrinter(ProgressSettings settings)
    : s_(std::move(settings)), start_(s_.clock()), last_shown_(start_) {}

void ProgressPrinter::operator()(const Progress& p) {
  if (s_.style == ProgressStyle::quiet) return;
  const bool failed = p.failures > failures_;
  failures_ = p.failures;
  if (p.last) ++counts_[static_cast<std::size_t>(p.last->outcome)];
  if (s_.style == ProgressStyle::verbose || (failed && p.last)) record_line(p);
  if (s_.style == ProgressStyle::verbose) return;
  const double now = s_.clock();
  const bool last = p.done == p.total;
  if (s_.terminal) {
    if (!(failed || last || now - last_shown_ >= s_.redraw_interval_s)) return;
    std::string line = status_line(p, now);
    if (s_.columns > 1 && line.size() >= s_.columns) {
      // Cut by bytes (a character is never narrower than its bytes), never inside one.
      std::size_t cut = s_.columns - 1;
      while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;
      line.resize(cut);
    }
    s_.write(fmt::format("\r{}\x1b[K", line));
    line_open_ = true;
  } else {
    if (!(last || now - last_shown_ >= s_.log_interval_s)) return;
    s_.write(log_line(p, now) + "\n");
  }
  last_shown_ = now;
}

void ProgressPrinter::finish() {
  if (line_open_) s_.write("\n");
  line_open_ = false;
}

// The per-record line, above the status line on a terminal: that line is cleared
// first and redrawn by the caller.
void ProgressPrinter::record_line(const Progress& p) {
  if (line_open_) s_.write("\r\x1b[K");
  line_open_ = false;
  const Record& r = *p.last;
  s_.write(terminal_text(fmt::format("[{}/{}] {:<12} {} {} {}\n", p.done, p.total, outcome_name(r.outcome),
                                     r.candidate, r.case_id, dtype_name(r.dtype))));
}

std::string ProgressPrinter::outcome_counts() const {
  std::string text;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    if (counts_[i]) text += fmt::format("{}{} {}", text.empty() ? "" : "  ", outcome_name(kAllOutcomes[i]), counts_[i]);
  }
  return text;
}

std::string ProgressPrinter::status_line(const Progress& p, double now) const {
  const auto [rate, eta] = pace(p, now - start_);
  return terminal_text(joined({fmt::format("{} {}/{}", bar(p.done, p.total), p.done, p.total), outcome_counts(), rate,
                               eta, running_text(p)},
                              "  "));
}

std::string ProgressPrinter::log_line(const Progress& p, double now) const {
  const auto [rate, eta] = pace(p, now - start_);
  return terminal_text(joined({fmt::format("{}/{} records", p.done, p.total), fmt::format("{} failing", p.failures),
                               rate, eta, running_text(p)},
                              ", "));
}

ProgressCallback progress_callback(ProgressPrinter& printer) {
  return [&printer](const Progress& p) { printer(p); };
}

}  // namespace xposcheck::cli
