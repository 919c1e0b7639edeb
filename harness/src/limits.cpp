#include "xposcheck/harness/limits.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace xposcheck {

double estimated_case_bytes(const Case& c, std::size_t logit_rows) {
  const double copies = static_cast<double>(c.batch) * static_cast<double>(c.heads);
  const double d = static_cast<double>(c.head_dim);
  const double n = static_cast<double>(c.seq_len), keys = static_cast<double>(c.key_rows());
  const double rotated = (n + keys) * d * copies;
  // Inputs, their dtype-rounded copies, golden hi and lo, candidate outputs and the
  // comparison's rows: about six doubles per q/k element.
  const double tensors = rotated * 8 * 6;
  // Eight doubles per (position, pair): cos, sin and scales in double-double.
  const double tables = keys * static_cast<double>(c.pairs()) * 8 * 8;
  const double rows = logit_rows == 0 ? n : std::min(n, static_cast<double>(logit_rows));
  const double logits = rows * keys * copies * 8 * 3;  // golden hi, lo and the candidate's
  return tensors + tables + logits;
}

std::optional<double> memory_limit_bytes() {
  std::optional<double> limit;
  std::ifstream meminfo("/proc/meminfo");
  for (std::string line; std::getline(meminfo, line);) {
    std::istringstream in(line);
    std::string key;
    double kib = 0;
    if (in >> key >> kib && key == "MemTotal:") limit = kib * 1024;
  }
  if (const char* cap = std::getenv("XPOSCHECK_MAX_MEMORY_MB")) {
    char* end = nullptr;
    const double mb = std::strtod(cap, &end);
    if (end != cap && *end == '\0' && mb > 0) limit = std::min(limit.value_or(mb * 1048576), mb * 1048576);
  }
  return limit;
}

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  std::size_t u = 0;
  while (bytes >= 1024 && u + 1 < std::size(units)) bytes /= 1024, ++u;
  return fmt::format("{:.3g} {}", bytes, units[u]);
}

void check_memory(const std::string& case_id, double bytes, const std::string& holds) {
  const std::optional<double> limit = memory_limit_bytes();
  if (!limit || bytes <= *limit) return;
  throw LimitError(fmt::format("case {} would need about {} ({}), more than the {} this machine allows "
                               "(MemTotal, or XPOSCHECK_MAX_MEMORY_MB)",
                               case_id, human_bytes(bytes), holds, human_bytes(*limit)));
}

void check_case_memory(const std::vector<GridCase>& cases, std::size_t logit_rows) {
  if (cases.empty()) return;
  const auto bytes = [&](const GridCase& gc) { return estimated_case_bytes(gc.params, logit_rows); };
  const GridCase& largest = *std::max_element(cases.begin(), cases.end(),
                                              [&](const GridCase& a, const GridCase& b) { return bytes(a) < bytes(b); });
  check_memory(largest.id, bytes(largest), "inputs, golden outputs, tables and logits");
}

}  // namespace xposcheck
