#pragma once
// What `xposcheck sweep` says while it runs (docs/cli-sweep.md, Progress and results):
// on a terminal one status line redrawn in place, in a log a line every few seconds,
// and in both a line for every failing record; --verbose a line for every record,
// --quiet nothing. The terminal test, the clock and the output are injectable so that
// tests can drive every style.
#include <array>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "xposcheck/harness/outcome.hpp"
#include "xposcheck/harness/sweep.hpp"

namespace xposcheck::cli {

enum class ProgressStyle { quiet, normal, verbose };

struct ProgressSettings {
  ProgressStyle style = ProgressStyle::normal;
  bool terminal = false;                          // the output is a terminal
  std::function<double()> clock;                  // seconds from any fixed point
  std::function<void(std::string_view)> write;    // the output (stderr)
  double log_interval_s = 5.0;                    // between log lines
  double redraw_interval_s = 0.1;                 // between terminal redraws
  // The terminal's width: the status line is cut to fit, since a wrapped line cannot
  // be redrawn in place. 0: unknown, not cut.
  std::size_t columns = 0;
};

// Settings for stderr: a terminal when isatty says so, its width, the steady clock.
ProgressSettings stderr_progress(ProgressStyle style);

// Follows the records as run_sweep reports them; call finish() after the sweep.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(ProgressSettings settings);
  void operator()(const Progress& p);
  // Ends the status line, so that what follows starts on a line of its own.
  void finish();

 private:
  void record_line(const Progress& p);
  std::string status_line(const Progress& p, double now) const;
  std::string log_line(const Progress& p, double now) const;
  std::string outcome_counts() const;

  ProgressSettings s_;
  double start_, last_shown_;
  std::size_t failures_ = 0;
  bool line_open_ = false;  // a status line is on the terminal, without its newline
  std::array<std::size_t, std::size(kAllOutcomes)> counts_{};
};

// A ProgressCallback for run_sweep sharing `printer`.
ProgressCallback progress_callback(ProgressPrinter& printer);

// "38/s", "0.4/s"; "~40 s left", "~12 min left", "~3.4 h left": rates and durations as
// people read them.
std::string rate_text(double per_s);
std::string duration_text(double s);

}  // namespace xposcheck::cli
