#include "xposcheck/harness/horizon.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fmt/format.h>
#include <map>
#include <tuple>
#include <utility>

namespace xposcheck {
namespace {

// A bin's distance from position 0: its smallest and largest |p| (memory keys sit at
// negative positions; a bin across 0 starts at 0).
long nearest_abs(const PositionBin& b) {
  return b.first <= 0 && b.last >= 0 ? 0 : std::min(std::labs(b.first), std::labs(b.last));
}
long farthest_abs(const PositionBin& b) { return std::max(std::labs(b.first), std::labs(b.last)); }

// Whether a record's horizon is tighter evidence than the summary's so far: its bin
// ends nearer position 0 (ties: starts nearer, then the smaller case id, so the answer
// does not depend on record order).
bool tighter(const AccuracyHorizon& h, const std::string& case_id, const HorizonSummary& s) {
  if (!s.nearest) return true;
  return std::tie(*h.far, *h.near, case_id) < std::tie(*s.nearest->far, *s.nearest->near, s.case_id);
}

}  // namespace

std::optional<AccuracyHorizon> record_horizon(const std::vector<TensorStats>& tensors, double threshold) {
  std::optional<AccuracyHorizon> h;
  for (const TensorStats& t : tensors) {
    // The logits mix two positions per value: their error is not one position's.
    if (!t.compared || t.name == "logits" || t.curve.empty()) continue;
    if (!h) {
      h.emplace();
      h->threshold = threshold;
    }
    for (const PositionBin& b : t.curve) {
      const long near = nearest_abs(b), far = farthest_abs(b);
      h->reach = std::max(h->reach, far);
      if (!(b.max_rel > threshold)) continue;
      if (!h->found() || near < *h->near || (near == *h->near && far < *h->far)) {
        h->near = near;
        h->far = far;
        h->tensor = t.name;
      }
    }
  }
  return h;
}

std::optional<AccuracyHorizon> record_horizon(const Record& r, double threshold) {
  if (accepted_convention(r)) return std::nullopt;
  return record_horizon(r.tensors, threshold);
}

void HorizonTable::add(const Record& r) {
  // As the envelope: the forward pass's records.
  if (r.pass != Pass::forward) return;
  // An accepted record is left out even where a file of an earlier version kept its
  // horizon; counted where the run reads horizons at all.
  const bool left_out = accepted_convention(r);
  if (left_out ? threshold_ <= 0 && !r.horizon : !r.horizon) return;
  auto [it, fresh] = groups_.try_emplace({r.candidate, r.dtype});
  HorizonSummary& s = it->second;
  if (fresh) {
    s.candidate = r.candidate;
    s.dtype = r.dtype;
    s.threshold = r.horizon ? r.horizon->threshold : threshold_;
  }
  if (left_out) {
    ++s.convention_left_out;
    return;
  }
  ++s.read_from;
  s.reach = std::max(s.reach, r.horizon->reach);
  if (r.horizon->found() && tighter(*r.horizon, r.case_id, s)) {
    s.nearest = r.horizon;
    s.case_id = r.case_id;
  }
}

std::vector<HorizonSummary> HorizonTable::summaries() const {
  std::vector<HorizonSummary> out;
  for (const auto& [key, s] : groups_) out.push_back(s);
  return out;
}

std::vector<HorizonSummary> compute_horizons(const Results& results) {
  HorizonTable table(results.run.horizon_threshold);
  for (const Record& r : results.records) table.add(r);
  return table.summaries();
}

std::string threshold_text(double threshold) {
  int exponent = 0;
  if (std::frexp(threshold, &exponent) == 0.5) return fmt::format("2^{}", exponent - 1);
  return fmt::format("{:g}", threshold);
}

ParsedThreshold parse_threshold(const std::string& text) {
  const std::string wanted = "want a finite number in (0, 1] (relative to the pair magnitude), e.g. 2^-8 or 0.004";
  const bool power = text.rfind("2^", 0) == 0;
  const std::string number = power ? text.substr(2) : text;
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(number.c_str(), &end);
  if (number.empty() || end != number.c_str() + number.size() || errno == ERANGE || !std::isfinite(v))
    return {std::nullopt, fmt::format("'{}' is not a number: {}", text, wanted)};
  const double threshold = power ? std::exp2(v) : v;
  if (!(threshold > 0 && threshold <= 1))
    return {std::nullopt, fmt::format("{} is out of range: {}", text, wanted)};
  return {threshold, {}};
}

std::string describe_horizon_reach(const HorizonSummary& h) {
  const std::string t = threshold_text(h.threshold);
  const std::string left_out =
      h.convention_left_out == 0
          ? std::string()
          : fmt::format("{} record{} accepted under a convention left out (their curves are in SPEC's frame, "
                        "which they do not follow)",
                        h.convention_left_out, h.convention_left_out == 1 ? "" : "s");
  if (h.read_from == 0 && h.convention_left_out > 0) return "no record to read it from: " + left_out;
  const std::string reach =
      h.nearest ? fmt::format("error > {} beyond position ~{} (first exceeded at |p| {}..{} of {} in {})", t,
                              *h.nearest->near, *h.nearest->near, *h.nearest->far, h.nearest->tensor, h.case_id)
                : fmt::format("no horizon within the grid (error <= {} up to position {})", t, h.reach);
  return left_out.empty() ? reach : reach + "; " + left_out;
}

std::string describe_horizon(const HorizonSummary& h) {
  return fmt::format("horizon {} {}: {}", h.candidate, dtype_name(h.dtype), describe_horizon_reach(h));
}

}  // namespace xposcheck
