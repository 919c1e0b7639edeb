#pragma once
// Aggregates per (candidate, dtype, pass): counts per outcome and worst error. Shared
// by the console table, the Markdown summary and the HTML overview.
#include <array>
#include <map>
#include <ostream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "xposcheck/harness/envelope.hpp"
#include "xposcheck/harness/horizon.hpp"
#include "xposcheck/harness/outcome.hpp"
#include "xposcheck/reports/reporter.hpp"

namespace xposcheck {

// A column of the reports: a dtype, and the pass when it is the backward one
// ("bf16", "bf16 backward").
struct DTypePass {
  DType dtype = DType::fp32;
  Pass pass = Pass::forward;
  auto operator<=>(const DTypePass&) const = default;  // forward columns first
};
std::string dtype_pass_label(DTypePass column);
inline std::string dtype_pass_label(const Record& r) { return dtype_pass_label({r.dtype, r.pass}); }

struct SummaryRow {
  std::string candidate;
  DType dtype = DType::fp32;
  Pass pass = Pass::forward;
  DTypePass column() const { return {dtype, pass}; }
  std::array<std::size_t, std::size(kAllOutcomes)> counts{};
  std::size_t total = 0;
  double worst_ulps = 0;       // largest max_ulps of any compared tensor (not of records accepted under a convention)
  double worst_ratio = 0;      // largest error / allowed among PASS and TOLERANCE
  double ulps_sum = 0;         // sum of error ulps over the finite compared tensors
  std::size_t ulps_elements = 0;
  std::string worst_case;      // case id of worst_ratio
  bool gate_failed = false;
  std::size_t gate_failures = 0;  // records failing the gate (OUT_OF_RANGE with a failing representable part included)
  std::size_t in_range_failures = 0;  // of which OUT_OF_RANGE records whose representable part failed

  std::size_t count(Outcome o) const { return counts[static_cast<std::size_t>(o)]; }
  // Mean error in ulps over every compared element (the Boost.Math tables' "mean").
  double mean_ulps() const {
    return ulps_elements ? ulps_sum / static_cast<double>(ulps_elements) : 0.0;
  }
};

class SummaryTable : public Reporter {
 public:
  explicit SummaryTable(GatePolicy policy = {}) : policy_(policy) {}
  void begin(const RunInfo& run, const GateVerdict& verdict) override;
  void record(const Record& r) override;
  const std::vector<SummaryRow>& rows() const { return rows_; }
  std::size_t failures() const;

 private:
  GatePolicy policy_;
  std::vector<SummaryRow> rows_;
  std::map<std::tuple<std::string, DType, Pass>, std::size_t> index_;
};

// Prints the table: one line per candidate and dtype, a column per outcome seen.
void print_summary(std::ostream& out, const SummaryTable& table);

// One line per candidate and dtype: the safe envelope of each memory length.
void print_envelopes(std::ostream& out, const std::vector<Envelope>& envelopes);
// One line per candidate and dtype: the accuracy horizon (docs/long-context.md).
void print_horizons(std::ostream& out, const std::vector<HorizonSummary>& horizons);

}  // namespace xposcheck
