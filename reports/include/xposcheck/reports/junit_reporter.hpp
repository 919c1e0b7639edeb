#pragma once
// JUnit XML for CI dashboards: a <testsuite> per candidate and dtype
// ("xposcheck.<candidate>.<dtype>"), a <testcase> per case named by its case id.
// Gate-failing outcomes are <failure>s (CRASH and TIMEOUT are <error>s), OUT_OF_RANGE
// is <skipped> unless the gate counts it as a failure.
#include <ostream>
#include <string>
#include <vector>

#include "xposcheck/reports/reporter.hpp"

namespace xposcheck {

class JUnitReporter : public Reporter {
 public:
  explicit JUnitReporter(std::ostream& out) : out_(out) {}
  void begin(const RunInfo& run, const GateVerdict& verdict) override;
  void record(const Record& record) override;
  void end() override;

 private:
  struct Suite {
    std::string name;
    std::size_t tests = 0, failures = 0, errors = 0, skipped = 0;
    double time_s = 0;
    std::string testcases;  // the suite's <testcase> elements, already written
  };

  std::ostream& out_;
  GatePolicy policy_;
  RunInfo run_;
  std::vector<Suite> suites_;  // in order of first appearance
};

}  // namespace xposcheck
