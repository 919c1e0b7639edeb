// The summary table's accuracy columns over records of every kind.
#include <catch2/catch.hpp>

#include "xposcheck/reports/summary.hpp"

using namespace xposcheck;

namespace {

Record record_with_ulps(const std::string& id, double max_ulps, double ratio) {
  Record r;
  r.candidate = "css";
  r.case_id = id;
  r.dtype = DType::bf16;
  r.max_ratio = ratio;
  TensorStats t;
  t.name = "k_out";
  t.compared = true;
  t.elements = 10;
  t.max_ulps = max_ulps;
  t.mean_ulps = max_ulps / 2;
  r.tensors = {t};
  return r;
}

}  // namespace

TEST_CASE("worst and mean ulps leave out records accepted under a convention, err/tol keeps them") {
  // Accepted: its tensors are errors against SPEC's frame (whole rotations), its
  // max_ratio that of its logits or of its own frame.
  Record accepted = record_with_ulps("M100", 5e6, 0.5);
  accepted.diagnosis.emplace();
  accepted.diagnosis->kind = DiagnosisKind::convention;
  accepted.diagnosis->convention = "origin";
  accepted.diagnosis->accepted = true;
  SummaryTable table;
  table.record(record_with_ulps("M0", 3.0, 0.25));
  table.record(accepted);
  REQUIRE(table.rows().size() == 1);
  const SummaryRow& row = table.rows()[0];
  CHECK(row.total == 2);
  CHECK(row.count(Outcome::pass) == 2);
  CHECK(row.worst_ulps == 3.0);
  CHECK(row.mean_ulps() == 1.5);
  CHECK(row.worst_ratio == 0.5);
  CHECK(row.worst_case == "M100");
  // The same record when the convention was not accepted counts as it is.
  accepted.diagnosis->accepted = false;
  table.record(accepted);
  CHECK(table.rows()[0].worst_ulps == 5e6);
}
