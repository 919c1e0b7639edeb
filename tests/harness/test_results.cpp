// read_results refuses malformed files with a message naming the file, the record
// index and the key: merge and baseline once accepted `records: {}`, negative counts
// and shards like 1/0.
#include <catch2/catch.hpp>

#include <fstream>
#include <string>

#include "harness_fixtures.hpp"
#include "temp_dir.hpp"
#include "xposcheck/harness/results.hpp"

using namespace xposcheck;
using namespace xposcheck::testing;
using Catch::Matchers::Contains;

namespace {

// A valid results file of two records, as text, for the tests to break.
std::string valid_text(const TempDir& dir) {
  Results results;
  results.run.grid_name = "tiny";
  results.records.push_back(run_builtin("fp32-angles", grid_case(8, 7, 0), DType::fp32));
  results.records.push_back(run_builtin("fp32-angles", grid_case(8, 9, 0), DType::fp32));
  write_results(dir.path / "valid.json", results);
  std::ifstream in(dir.path / "valid.json");
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string replace_once(std::string s, const std::string& from, const std::string& to) {
  const auto at = s.find(from);
  REQUIRE(at != std::string::npos);
  return s.replace(at, from.size(), to);
}

// The message read_results gives for the broken text.
std::string error_for(const TempDir& dir, const std::string& text) {
  const auto file = dir.path / "broken.json";
  std::ofstream(file) << text;
  try {
    read_results(file);
  } catch (const ResultsError& e) {
    return e.what();
  }
  FAIL("read_results accepted the broken file");
  return {};
}

}  // namespace

TEST_CASE("a schema_version of the wrong type names the file") {
  const TempDir dir;
  const std::string text = valid_text(dir);
  const std::string e = error_for(dir, replace_once(text, "\"schema_version\": 1", "\"schema_version\": \"1\""));
  CHECK_THAT(e, Contains("broken.json"));
  CHECK_THAT(e, Contains("schema_version"));
}

TEST_CASE("records must be an array") {
  const TempDir dir;
  std::string text = valid_text(dir);
  text = text.substr(0, text.find("\"records\"")) + "\"records\": {}\n}\n";
  const std::string e = error_for(dir, text);
  CHECK_THAT(e, Contains("broken.json"));
  CHECK_THAT(e, Contains("records"));
}

TEST_CASE("a missing key and a negative count name the record index and the key") {
  const TempDir dir;
  const std::string text = valid_text(dir);
  const auto second = text.rfind("{\"candidate\"");
  std::string missing = text;
  missing.replace(missing.find("\"message\"", second), 9, "\"massage\"");
  std::string e = error_for(dir, missing);
  CHECK_THAT(e, Contains("record 1"));
  CHECK_THAT(e, Contains("message"));
  std::string negative = text;
  negative.replace(negative.find("\"elements\":", second), 11, "\"elements\":-");
  e = error_for(dir, negative);
  CHECK_THAT(e, Contains("broken.json"));
  CHECK_THAT(e, Contains("record 1"));
  CHECK_THAT(e, Contains("elements"));
}

TEST_CASE("impossible shards are refused") {
  const TempDir dir;
  const std::string text = valid_text(dir);
  const std::string shard = GENERATE(as<std::string>{}, "1/0", "5/3", "0/2", "1+4/3", "x");
  const std::string e = error_for(dir, replace_once(text, "\"shard\": \"\"", "\"shard\": \"" + shard + "\""));
  CHECK_THAT(e, Contains("broken.json"));
  CHECK_THAT(e, Contains("shard"));
}

TEST_CASE("merged shards still read") {
  const TempDir dir;
  const std::string text = valid_text(dir);
  std::ofstream(dir.path / "ok.json") << replace_once(text, "\"shard\": \"\"", "\"shard\": \"1+3/4\"");
  CHECK(read_results(dir.path / "ok.json").run.shard == "1+3/4");
}
