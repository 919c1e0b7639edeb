#include "xposcheck/reports/junit_reporter.hpp"

#include <algorithm>
#include <fmt/format.h>

#include "evidence.hpp"
#include "text_escape.hpp"

namespace xposcheck {
namespace {

using text::markup;

double seconds(const Record& r) {
  return r.timing.inputs_s + r.timing.golden_s + r.timing.candidate_s + r.timing.compare_s;
}

// The message attribute: one line a dashboard can show in a list.
std::string message_attribute(const Record& r) {
  return markup(fmt::format("{}: {}", outcome_name(r.outcome), text::first_line(r.message, 300)));
}

// JUnit's timestamp has no zone designator; results record UTC.
std::string junit_timestamp(std::string t) {
  if (!t.empty() && t.back() == 'Z') t.pop_back();
  return t;
}

void write_property(std::string& out, const char* name, const std::string& value) {
  if (value.empty()) return;
  out += fmt::format("      <property name=\"{}\" value=\"{}\"/>\n", name, markup(value));
}

std::string properties(const RunInfo& run) {
  std::string out = "    <properties>\n";
  write_property(out, "tool_version", run.tool_version);
  write_property(out, "git_commit", run.git_commit);
  write_property(out, "grid", run.grid_name);
  write_property(out, "grid_source", run.grid_source);
  write_property(out, "grid_fingerprint", run.grid_fingerprint);
  write_property(out, "machine", run.machine);
  write_property(out, "shard", run.shard);
  return out + "    </properties>\n";
}

}  // namespace

void JUnitReporter::begin(const RunInfo& run, const GateVerdict& verdict) {
  run_ = run;
  policy_ = verdict.policy;
  suites_.clear();
}

void JUnitReporter::record(const Record& r) {
  // One suite per candidate, dtype and pass: "xposcheck.torch.bf16", "xposcheck.torch.bf16.backward".
  std::string name = fmt::format("xposcheck.{}.{}", r.candidate, dtype_name(r.dtype));
  if (r.pass != Pass::forward) name.append(".").append(pass_name(r.pass));
  auto it = std::find_if(suites_.begin(), suites_.end(), [&](const Suite& s) { return s.name == name; });
  if (it == suites_.end()) {
    it = suites_.insert(suites_.end(), Suite{});
    it->name = name;
  }
  Suite& suite = *it;
  ++suite.tests;
  suite.time_s += seconds(r);

  std::string body;
  const char* element = nullptr;
  if (r.outcome == Outcome::crash || r.outcome == Outcome::timeout) {
    element = "error";
    ++suite.errors;
  } else if (fails_gate(r, policy_)) {
    element = "failure";
    ++suite.failures;
  } else if (r.outcome == Outcome::out_of_range) {
    ++suite.skipped;
    body = fmt::format("      <skipped message=\"{}\"/>\n", message_attribute(r));
  }
  if (element) {
    body = fmt::format("      <{0} message=\"{1}\" type=\"{2}\">{3}</{0}>\n", element,
                       message_attribute(r), outcome_name(r.outcome), markup(evidence::text(r)));
  }
  const std::string open = fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"{:.6f}\"",
                                       markup(name), markup(r.case_id), seconds(r));
  suite.testcases += body.empty() ? open + "/>\n" : open + ">\n" + body + "    </testcase>\n";
}

void JUnitReporter::end() {
  Suite total;
  total.name = fmt::format("xposcheck {}", run_.grid_name);
  for (const Suite& s : suites_) {
    total.tests += s.tests, total.failures += s.failures, total.errors += s.errors;
    total.skipped += s.skipped, total.time_s += s.time_s;
  }
  out_ << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out_ << fmt::format("<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" "
                      "skipped=\"{}\" time=\"{:.6f}\">\n", markup(total.name), total.tests,
                      total.failures, total.errors, total.skipped, total.time_s);
  const std::string props = properties(run_);
  for (const Suite& s : suites_) {
    out_ << fmt::format("  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" "
                        "skipped=\"{}\" time=\"{:.6f}\" timestamp=\"{}\">\n", markup(s.name),
                        s.tests, s.failures, s.errors, s.skipped, s.time_s,
                        markup(junit_timestamp(run_.started_at)));
    out_ << props << s.testcases << "  </testsuite>\n";
  }
  out_ << "</testsuites>\n";
}

}  // namespace xposcheck
