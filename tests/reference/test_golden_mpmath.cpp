// Both golden paths against the independent mpmath evaluation (50 digits, stored as
// 30-digit strings) of tests/data/xpos-mpmath-small.json.
#include <boost/multiprecision/cpp_bin_float.hpp>
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "golden_compare.hpp"
#include "xposcheck/reference/golden.hpp"

namespace {

using namespace xposcheck;
using json = nlohmann::json;
using Real = boost::multiprecision::cpp_bin_float_quad;

json load_cases() {
  std::ifstream in(XPOSCHECK_SOURCE_DIR "/tests/data/xpos-mpmath-small.json");
  REQUIRE(in.good());
  return json::parse(in).at("cases");
}

Case case_of(const json& j) {
  Case c;
  c.head_dim = j.at("head_dim");
  c.seq_len = j.at("seq_len");
  c.mem_len = j.value("mem_len", 0L);
  if (j.contains("rotary_dim")) c.rotary_dim = j.at("rotary_dim").get<long>();
  if (j.contains("center")) c.center = j.at("center").get<long>();
  c.base = j.value("base", c.base);
  c.base_rescale = j.value("base_rescale", c.base_rescale);
  c.interpolation = j.value("interpolation", c.interpolation);
  c.scale_base = j.value("scale_base", c.scale_base);
  c.xpos = j.value("xpos", c.xpos);
  c.layout = parse_layout(j.value("layout", std::string("half"))).value();
  return c;
}

// A [rows, D] array of numbers (inputs) as a [1, 1, rows, D] tensor.
Tensor tensor_of(const json& rows) {
  Values v;
  for (const auto& r : rows)
    for (const auto& x : r) v.push_back(x.get<double>());
  return Tensor(Shape{1, 1, rows.size(), rows.at(0).size()}, v);
}

// 30-digit decimal strings as double-double hi + lo (parsed at 113 bits).
struct Expected {
  Tensor hi;
  std::vector<double> lo;
};
Expected expected_of(const json& rows) {
  Expected e;
  for (const auto& r : rows)
    for (const auto& s : r) {
      const Real x(s.get<std::string>());
      const double hi = x.convert_to<double>();
      e.hi.data.push_back(hi);
      e.lo.push_back(Real(x - hi).convert_to<double>());
    }
  e.hi.shape = Shape{1, 1, rows.size(), rows.at(0).size()};
  return e;
}

void check_case(const json& jc, bool exact) {
  const Case c = case_of(jc.at("case"));
  const Tensor q_in = tensor_of(jc.at("q_in")), k_in = tensor_of(jc.at("k_in"));
  const Expected q = expected_of(jc.at("q_out")), k = expected_of(jc.at("k_out"));
  const Expected l = expected_of(jc.at("logits"));
  const Golden g = exact ? golden_exact(c, q_in, k_in) : golden_fast(c, q_in, k_in);

  for (const auto& [name, got, want] :
       {std::tuple{"q_out", &g.q_out, &q}, std::tuple{"k_out", &g.k_out, &k}}) {
    REQUIRE(got->shape == want->hi.shape);
    const auto w = testing::compare_outputs(c, name, *got, want->hi, &want->lo);
    INFO(jc.at("case").at("name").get<std::string>() << (exact ? " exact: " : " fast: ")
                                                     << w.where);
    CHECK(w.ulps <= 1.0);
  }
  REQUIRE(g.logit_rows.size() == static_cast<std::size_t>(c.seq_len));
  const auto mags = testing::logit_magnitudes(q.hi, k.hi, g.logit_rows);
  const auto w = testing::compare_logits(g.logits, l.hi, mags, &l.lo);
  INFO(jc.at("case").at("name").get<std::string>() << (exact ? " exact: " : " fast: ")
                                                   << w.where);
  CHECK(w.ulps <= 4.0);
}

}  // namespace

TEST_CASE("golden paths match the mpmath evaluation of all eight cases", "[golden][mpmath]") {
  const json cases = load_cases();
  REQUIRE(cases.size() == 8);
  for (const auto& jc : cases) {
    check_case(jc, false);
    check_case(jc, true);
  }
}

TEST_CASE("pass-through features of the partial-rotary mpmath case are the inputs",
          "[golden][mpmath]") {
  for (const auto& jc : load_cases()) {
    const Case c = case_of(jc.at("case"));
    if (c.rotary() == c.head_dim) continue;
    const Tensor q_in = tensor_of(jc.at("q_in"));
    const Expected q = expected_of(jc.at("q_out"));
    for (std::size_t e = 0; e < q_in.size(); ++e)
      if (static_cast<long>(e % c.head_dim) >= c.rotary()) CHECK(q.hi.data[e] == q_in.data[e]);
  }
}
