#pragma once
// A record judged in blocks against the same record judged whole: the same verdict,
// statistics (bit for bit but the logits' sums, which add in another order) and
// diagnosis.
#include <catch2/catch.hpp>

#include "xposcheck/harness/record.hpp"

namespace xposcheck::testing {

inline void check_same_stats(const TensorStats& a, const TensorStats& b) {
  INFO(a.name);
  CHECK(a.compared == b.compared);
  CHECK(a.elements == b.elements);
  CHECK(a.over_tolerance == b.over_tolerance);
  CHECK(a.nonfinite == b.nonfinite);
  CHECK(a.max_ulps == b.max_ulps);
  CHECK(a.max_ratio == b.max_ratio);
  CHECK(a.max_abs == b.max_abs);
  CHECK(a.max_rel == b.max_rel);
  CHECK(a.worst.row == b.worst.row);
  CHECK(a.worst.feature == b.worst.feature);
  CHECK(a.worst.batch == b.worst.batch);
  CHECK(a.worst.head == b.worst.head);
  REQUIRE(a.curve.size() == b.curve.size());
  for (std::size_t i = 0; i < a.curve.size(); ++i) {
    CHECK(a.curve[i].first == b.curve[i].first);
    CHECK(a.curve[i].max_ulps == b.curve[i].max_ulps);
    CHECK(a.curve[i].max_ratio == b.curve[i].max_ratio);
    CHECK(a.curve[i].max_rel == b.curve[i].max_rel);
  }
  if (a.name == "logits") {
    // Sums over the keys add block by block: the same to within rounding.
    CHECK(a.mean_ulps == Approx(b.mean_ulps).epsilon(1e-12));
    CHECK(a.bias.has_value() == b.bias.has_value());
    if (a.bias && b.bias) CHECK(*a.bias == Approx(*b.bias).epsilon(1e-9).margin(1e-300));
    if (a.bias_allowed && b.bias_allowed) CHECK(*a.bias_allowed == Approx(*b.bias_allowed).epsilon(1e-9));
  } else {
    CHECK(a.mean_ulps == b.mean_ulps);
    CHECK(a.rms_ulps == b.rms_ulps);
  }
}

// The diagnosis of a record judged in blocks reads the same sampled rows as the whole
// case's: the same verdict, numbers and words (but the time it took).
inline void check_same_diagnosis(const Diagnosis& a, const Diagnosis& b) {
  CHECK(a.verdict == b.verdict);
  CHECK(a.kind == b.kind);
  CHECK(a.explanation == b.explanation);
  CHECK(a.evidence == b.evidence);
  CHECK(a.convention == b.convention);
  CHECK(a.grid_setting == b.grid_setting);
  CHECK(a.accepted == b.accepted);
  CHECK(a.spec.compared == b.spec.compared);
  CHECK(a.spec.over == b.spec.over);
  CHECK(a.spec.max_ratio == b.spec.max_ratio);
  REQUIRE(a.decomposition.size() == b.decomposition.size());
  for (std::size_t i = 0; i < a.decomposition.size(); ++i) {
    CHECK(a.decomposition[i].pairs_used == b.decomposition[i].pairs_used);
    CHECK(a.decomposition[i].max_angle_error == b.decomposition[i].max_angle_error);
    CHECK(a.decomposition[i].max_log_scale_error == b.decomposition[i].max_log_scale_error);
  }
}

inline void check_same_record(const Record& blocks, const Record& all) {
  INFO(all.candidate << " " << all.case_id << " " << dtype_name(all.dtype) << ": " << all.message);
  CHECK(blocks.outcome == all.outcome);
  CHECK(blocks.message == all.message);
  CHECK(blocks.range.has_value() == all.range.has_value());
  if (blocks.range && all.range) {
    CHECK(blocks.range->count == all.range->count);
    CHECK(blocks.range->first_position == all.range->first_position);
  }
  REQUIRE(blocks.tensors.size() == all.tensors.size());
  for (std::size_t i = 0; i < all.tensors.size(); ++i) check_same_stats(blocks.tensors[i], all.tensors[i]);
  REQUIRE(blocks.diagnosis.has_value() == all.diagnosis.has_value());
  if (all.diagnosis) check_same_diagnosis(*blocks.diagnosis, *all.diagnosis);
}

}  // namespace xposcheck::testing
