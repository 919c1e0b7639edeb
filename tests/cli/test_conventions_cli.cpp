// Real code's conventions from the command line: Python candidates written in the
// cache frame with each common centre rule, and a module that pairs neighbouring
// features run through the torch adapter on both layouts and in both frames. Correct
// code passes (accepting its conventions, or with golden outputs in its own frame);
// a convention mixed with a bug is never accepted. Code in the shapes released
// libraries give it (python/testing/released_styles.py) is judged the same way.
#include <fstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "../harness/external_test_support.hpp"
#include "xposcheck/harness/process.hpp"

using namespace xposcheck;
using namespace xposcheck::test;
using Catch::Matchers::Contains;

namespace {

const std::string kSource = XPOSCHECK_SOURCE_DIR;

// Odd and even N, with and without memory, both layouts: 8 cases in 3 dtypes.
const std::string kFrameGrid = R"(name = "frames"
dtypes = ["fp32", "bf16", "fp16"]
[axes]
head_dim = 32
seq_len = [33, 64]
mem_len = [0, 40]
layout = ["half", "interleaved"]
)";

struct Sweep {
  int status = -1;
  std::string out;
  nlohmann::json records;
};

Sweep sweep(const ScratchDir& dir, const std::string& grid_text, const std::string& command,
            std::vector<std::string> extra = {}) {
  const fs::path grid = dir.path / "grid.toml", out = dir.path / "results.json";
  std::ofstream(grid) << grid_text;
  ProcessOptions o;
  o.argv = {XPOSCHECK_EXE, "sweep", "--grid", grid.string(), "--candidate-cmd", command,
            "--candidate-name", "candidate", "--out", out.string(), "--quiet"};
  o.argv.insert(o.argv.end(), extra.begin(), extra.end());
  o.working_dir = kSource;
  o.time_limit_s = 300;
  const ProcessResult r = run_process(o);
  Sweep s{r.exit_code, r.out.text() + r.err.text(), {}};
  std::ifstream in(out);
  if (in) s.records = nlohmann::json::parse(in).at("records");
  return s;
}

std::string cache_frame(const std::string& rule) {
  return testing_command("cache_frame.py") + " --centre " + rule;
}

}  // namespace

TEST_CASE("cache-frame code is the origin convention, with centre where its rule moves it",
          "[external][conventions]") {
  const struct {
    std::string rule, grid_centre, conventions;
  } rules[] = {{"queries", "", "origin"},
               {"keys", "keys-floor", "origin,centre"},
               {"keys-up", "keys-ceil", "origin,centre"}};
  for (const auto& r : rules) {
    INFO("--centre " << r.rule);
    ScratchDir dir("frames-" + r.rule);
    const Sweep plain = sweep(dir, kFrameGrid, cache_frame(r.rule));
    INFO(plain.out);
    CHECK(plain.status == 1);
    REQUIRE(plain.records.size() == 24);
    for (const auto& rec : plain.records) {
      INFO(rec.at("case_id") << " " << rec.at("dtype") << ": " << rec.at("message"));
      if (rec.at("outcome") == "PASS") continue;
      CHECK(rec.at("outcome") == "TOLERANCE");
      CHECK(rec.at("diagnosis").at("kind") == "convention");
      const std::string conventions = rec.at("diagnosis").at("convention");
      CHECK_THAT(r.conventions, Contains(conventions));
      if (rec.at("case").at("mem_len") == 40) CHECK(conventions == r.conventions);
    }
    CHECK(sweep(dir, kFrameGrid, cache_frame(r.rule), {"--accept-convention", "origin,centre"}).status == 0);
    // Golden outputs in its own frame: the strict elementwise check passes as is.
    const std::string framed = kFrameGrid + "first_position = 0\n" +
                               (r.grid_centre.empty() ? "" : "center = \"" + r.grid_centre + "\"\n");
    const Sweep strict = sweep(dir, framed, cache_frame(r.rule));
    INFO(strict.out);
    CHECK(strict.status == 0);
  }
}

TEST_CASE("cache-frame code whose query and key centres differ is a bug, never a convention",
          "[external][conventions]") {
  ScratchDir dir("frames-lengths");
  const Sweep s = sweep(dir, kFrameGrid, cache_frame("lengths"), {"--accept-convention", "origin,centre"});
  INFO(s.out);
  CHECK(s.status == 1);
  std::size_t named = 0;
  for (const auto& rec : s.records) {
    if (rec.at("case").at("mem_len") == 0) continue;
    INFO(rec.at("case_id") << " " << rec.at("dtype") << ": " << rec.at("message"));
    CHECK(rec.at("outcome") == "TOLERANCE");
    CHECK(rec.at("diagnosis").at("kind") == "bug");
    CHECK_FALSE(rec.at("diagnosis").at("accepted"));
    const std::string verdict = rec.at("diagnosis").at("verdict");
    named += verdict == "origin + centres-differ";
  }
  CHECK(named == 12);
}

TEST_CASE("a convention whose golden values leave the dtype is judged again in its own frame",
          "[external][conventions]") {
  // In fp16 the keys at -M fall below the normal range under SPEC's centre (M + N/2
  // past ~4,000): no logits are compared, so an accepted convention has nothing to pass
  // on; it is judged again, every element, in the frame its diagnosis names.
  const std::string grid = "name = \"envelope\"\ndtypes = [\"fp16\"]\n[axes]\nhead_dim = 64\n"
                           "seq_len = 4096\nmem_len = 4096\n";
  ScratchDir dir("frames-envelope");
  const Sweep plain = sweep(dir, grid, cache_frame("keys"));
  INFO(plain.out);
  CHECK(plain.status == 1);
  REQUIRE(plain.records.size() == 1);
  const auto& p = plain.records[0];
  INFO(p.at("message"));
  CHECK(p.at("outcome") == "OUT_OF_RANGE");
  CHECK(p.at("range").at("in_range_outcome") == "TOLERANCE");
  CHECK(p.at("diagnosis").at("kind") == "convention");
  CHECK(p.at("diagnosis").at("convention") == "origin,centre");
  CHECK_THAT(p.at("message").get<std::string>(), Contains("accept with --accept-convention origin,centre"));

  const Sweep accepted = sweep(dir, grid, cache_frame("keys"), {"--accept-convention", "origin,centre"});
  INFO(accepted.out);
  CHECK(accepted.status == 0);
  REQUIRE(accepted.records.size() == 1);
  const auto& a = accepted.records[0];
  INFO(a.at("message"));
  CHECK(a.at("diagnosis").at("accepted") == true);
  CHECK(a.at("range").at("in_range_outcome") == "PASS");
  CHECK_THAT(a.at("message").get<std::string>(),
             Contains("first_position = 0, center = \"keys-floor\"") && Contains("every element judged there"));

  // Under the relative rule the yardstick ran in SPEC's frame: nothing to judge the
  // frame by, so the record stays failing and says why.
  const Sweep relative = sweep(dir, grid, cache_frame("keys"),
                               {"--accept-convention", "origin,centre", "--tolerance-rule", "relative"});
  INFO(relative.out);
  CHECK(relative.status == 1);
  REQUIRE(relative.records.size() == 1);
  CHECK_FALSE(relative.records[0].at("diagnosis").at("accepted"));
  CHECK_THAT(relative.records[0].at("message").get<std::string>(),
             Contains("judged again in its own frame, which this case cannot be"));

  // One key row off as well: the diagnosis' sample of rows misses it, the judging in
  // the frame does not.
  const Sweep nudged = sweep(dir, grid, cache_frame("keys") + " --nudge-key-row -3",
                             {"--accept-convention", "origin,centre"});
  INFO(nudged.out);
  CHECK(nudged.status == 1);
  REQUIRE(nudged.records.size() == 1);
  const auto& n = nudged.records[0].at("diagnosis");
  INFO(n.at("evidence"));
  CHECK(n.at("kind") == "bug");
  CHECK_FALSE(n.at("accepted"));
  CHECK_THAT(n.at("evidence").get<std::string>(), Contains("judged again in that frame") && Contains("row 8189"));
}

TEST_CASE("a bug on one query row beside an accepted convention fails, judged whole or in blocks",
          "[external][conventions]") {
  // Positions counted from the first cached key (origin), SPEC's centre moved along:
  // the logits pass on their 128 sampled query rows, and query row 1 is in neither
  // that sample nor the diagnosis' one. Accepted, the case is judged again in the
  // convention's frame, every element: the 1% off row 1 fails there.
  const std::string grid = R"(name = "one-row"
dtypes = ["fp32"]
[axes]
head_dim = 32
seq_len = 1000
mem_len = 40
)";
  ScratchDir dir("one-query-row");
  for (const auto& whole_or_blocks : {std::vector<std::string>{}, std::vector<std::string>{"--blocks-above", "0"}}) {
    std::vector<std::string> flags = {"--accept-convention", "origin"};
    flags.insert(flags.end(), whole_or_blocks.begin(), whole_or_blocks.end());
    INFO((whole_or_blocks.empty() ? "whole" : "in blocks"));
    const Sweep clean = sweep(dir, grid, cache_frame("queries"), flags);
    INFO(clean.out);
    CHECK(clean.status == 0);
    REQUIRE(clean.records.size() == 1);
    CHECK(clean.records[0].at("diagnosis").at("accepted") == true);
    CHECK_THAT(clean.records[0].at("message").get<std::string>(),
               Contains("passes in the frame of the accepted origin convention (first_position = 0), every "
                        "element judged there"));

    const Sweep nudged = sweep(dir, grid, cache_frame("queries") + " --nudge-query-row 1", flags);
    INFO(nudged.out);
    CHECK(nudged.status == 1);
    REQUIRE(nudged.records.size() == 1);
    const auto& r = nudged.records[0];
    INFO(r.at("message"));
    CHECK(r.at("outcome") == "TOLERANCE");
    CHECK(r.at("diagnosis").at("kind") == "bug");
    CHECK_FALSE(r.at("diagnosis").at("accepted"));
    CHECK_THAT(r.at("diagnosis").at("evidence").get<std::string>(),
               Contains("judged again in that frame (first_position = 0), the outputs still fail") &&
                   Contains("row 1 "));
  }
}

TEST_CASE("a neighbour-pairing module passes through the adapter on both layouts and frames",
          "[external][torch][conventions]") {
  if (!torch_available()) {
    WARN("skipped: " << kPython << " cannot import torch");
    return;
  }
  const std::string adapter = kPython + " " + kSource + "/python/candidates/torch_adapter.py --module " +
                              kSource + "/python/testing/neighbour_pairing_module.py --layout interleaved";
  ScratchDir dir("adapter-neighbours");
  const Sweep segment = sweep(dir, kFrameGrid, adapter);
  INFO(segment.out);
  CHECK(segment.status == 0);
  CHECK_THAT(segment.out, Contains("gate: PASS (0 failing of 24)"));
  // Called with positions 0..M+N-1, it centres on floor((M+N)/2) of that frame.
  const Sweep cache = sweep(dir, kFrameGrid, adapter + " --frame cache");
  CHECK(cache.status == 1);
  for (const auto& rec : cache.records) {
    if (rec.at("outcome") == "PASS") continue;
    INFO(rec.at("case_id") << " " << rec.at("dtype") << ": " << rec.at("message"));
    CHECK(rec.at("diagnosis").at("kind") == "convention");
  }
  CHECK(sweep(dir, kFrameGrid, adapter + " --frame cache", {"--accept-convention", "origin,centre"}).status == 0);
  CHECK(sweep(dir, kFrameGrid + "first_position = 0\ncenter = \"keys-floor\"\n", adapter + " --frame cache")
            .status == 0);
}

TEST_CASE("bugs planted the way PyTorch code writes them are named in every dtype",
          "[external][diagnosis]") {
  const std::string grid = R"(name = "planted"
dtypes = ["fp32", "bf16", "fp16"]
[axes]
head_dim = 64
rotary_dim = 32
seq_len = [100, 300]
mem_len = [0, 60]
layout = ["half", "interleaved"]
base_rescale = 4.0
interpolation = 2.0
)";
  // Each bug with its verdict; fp16-rounded frequencies are within bf16's own error.
  const std::pair<std::string, std::string> bugs[] = {
      {"ntk-plus-two", "ntk-exponent"},
      {"freqs-bf16", "frequencies-rounded"},
      {"freqs-fp16", "frequencies-rounded"},
      {"xpos-interpolated", "xpos-interpolated"},
      {"passthrough-scaled", "scale-on-passthrough"},
      {"rotary-at-end", "rotary-last-features"},
      {"centre-drift", "centres-differ"},
      {"positions-in-dtype", "positions-in-dtype"}};
  ScratchDir dir("planted");
  CHECK(sweep(dir, grid, testing_command("planted.py") + " --bug none").status == 0);
  for (const auto& [bug, verdict] : bugs) {
    const Sweep s = sweep(dir, grid, testing_command("planted.py") + " --bug " + bug);
    INFO(bug << ": " << s.out);
    CHECK(s.status == 1);
    std::size_t failing = 0;
    for (const auto& rec : s.records) {
      if (rec.at("outcome") == "PASS") continue;
      ++failing;
      INFO(rec.at("case_id") << " " << rec.at("dtype") << ": " << rec.at("message"));
      CHECK(rec.at("diagnosis").at("verdict") == verdict);
    }
    CHECK(failing >= 4);
  }
}

namespace {

std::string released(const std::string& style) {
  return testing_command("released_styles.py") + " --style " + style;
}

std::string released_grid(const std::string& dtypes, const std::string& axes) {
  return "name = \"released\"\ndtypes = " + dtypes + "\n[axes]\nhead_dim = 64\n" + axes;
}

}  // namespace

TEST_CASE("code in the shapes released libraries give it is judged by its conventions",
          "[external][torch][conventions]") {
  if (!torch_available()) {
    WARN("skipped: " << kPython << " cannot import torch");
    return;
  }
  // Correct code in its own frame (and torchscale's centre): conventions only, which
  // pass when accepted. M = 8000 in fp32 puts the cache frame's angles 8000 positions
  // further out than SPEC's: its logits must still pass.
  const struct {
    std::string style, grid, conventions;
  } correct[] = {
      {"torchscale", released_grid("[\"fp32\", \"bf16\"]", "layout = \"interleaved\"\nseq_len = [1, 64]\nmem_len = [0, 1000]\n"),
       "origin,centre"},
      {"cos-sin-cache", released_grid("[\"fp32\", \"bf16\"]", "xpos = false\nseq_len = 64\nmem_len = [0, 8000]\n"), "origin"},
      {"complex", released_grid("[\"fp32\", \"bf16\"]", "layout = \"interleaved\"\nxpos = false\nseq_len = 64\nmem_len = [0, 8000]\n"),
       "origin"},
      {"flash-cache",
       released_grid("[\"fp32\", \"bf16\", \"fp16\"]", "layout = [\"half\", \"interleaved\"]\nseq_len = [1, 64]\nmem_len = [0, 1000]\n"),
       "origin,centre"},
      {"palm", released_grid("[\"fp32\", \"bf16\"]", "seq_len = [1, 63]\nmem_len = [0, 1000]\nrotary_dim = [32, 64]\n"),
       "origin,centre"}};
  for (const auto& c : correct) {
    INFO("--style " << c.style);
    ScratchDir dir("released-" + c.style);
    const Sweep plain = sweep(dir, c.grid, released(c.style));
    INFO(plain.out);
    CHECK(plain.status == 1);
    for (const auto& rec : plain.records) {
      if (rec.at("outcome") == "PASS") continue;
      INFO(rec.at("case_id") << " " << rec.at("dtype") << ": " << rec.at("message"));
      CHECK(rec.at("diagnosis").at("kind") == "convention");
      CHECK_THAT(c.conventions, Contains(std::string(rec.at("diagnosis").at("convention"))));
    }
    const Sweep accepted = sweep(dir, c.grid, released(c.style), {"--accept-convention", "origin,centre"});
    INFO(accepted.out);
    CHECK(accepted.status == 0);
  }
  // The fused-kernel module's tables grow to the longest length it has seen in a dtype,
  // and its XPOS centre with them: after a long case a short one is centred far from its
  // rows, q and k alike, which is still a convention and passes when accepted.
  {
    ScratchDir history("released-flash-history");
    const Sweep s = sweep(history,
                          released_grid("[\"bf16\"]", "[[grid]]\nseq_len = 4096\nmem_len = 4096\n"
                                                      "[[grid]]\nseq_len = 64\nmem_len = [0, 100]\n"),
                          released("flash-cache"), {"--accept-convention", "origin,centre"});
    INFO(s.out);
    CHECK(s.status == 0);
    REQUIRE(s.records.size() == 3);
    for (const auto& rec : s.records) {
      INFO(rec.at("case_id") << ": " << rec.at("message"));
      CHECK(rec.at("outcome") == "PASS");
      REQUIRE(rec.at("diagnosis").is_object());
      CHECK(rec.at("diagnosis").at("kind") == "convention");
      if (rec.at("case").at("seq_len") == 64)
        CHECK_THAT(rec.at("diagnosis").at("explanation").get<std::string>(), Contains("centred at 4096"));
    }
  }
  // Its fp16 tables, with the XPOS scale folded in, overflow where the outputs would not
  // (keys far above its centre on long memory): a precision defect, named with the frame
  // it sits in, never accepted.
  {
    ScratchDir overflow("released-flash-fp16");
    const Sweep s = sweep(overflow, released_grid("[\"fp16\"]", "seq_len = 2048\nmem_len = 8192\n"),
                          released("flash-cache"), {"--accept-convention", "origin,centre"});
    INFO(s.out);
    CHECK(s.status == 1);
    REQUIRE(s.records.size() == 1);
    const auto& rec = s.records[0];
    INFO(rec.at("message"));
    CHECK(rec.at("outcome") == "OUT_OF_RANGE");
    CHECK(rec.at("diagnosis").at("kind") == "precision");
    CHECK(rec.at("diagnosis").at("verdict") == "scaled-tables-in-dtype + origin + shared-centre");
  }
  // Neighbouring pairs under an XPOS scale table laid out for half pairs: a pair's two
  // features scaled apart, which no rotation does; a bug, never accepted.
  {
    ScratchDir mixed("released-cat-scale");
    const Sweep s = sweep(mixed, released_grid("[\"fp32\", \"bf16\"]", "layout = \"interleaved\"\nseq_len = 64\nmem_len = [0, 1000]\n"),
                          released("cat-scale"), {"--accept-convention", "origin,centre"});
    INFO(s.out);
    CHECK(s.status == 1);
    REQUIRE(s.records.size() == 4);
    for (const auto& rec : s.records) {
      INFO(rec.at("case_id") << " " << rec.at("dtype") << ": " << rec.at("message"));
      CHECK(rec.at("outcome") == "TOLERANCE");
      CHECK(rec.at("diagnosis").at("verdict") == "tables-other-layout");
      CHECK_THAT(rec.at("diagnosis").at("evidence").get<std::string>(), Contains("the XPOS scale table"));
    }
  }
  // A cached-key path with its positions made in bf16 and its queries scaled around
  // their own middle: bugs, named with the frame they sit in, never accepted.
  ScratchDir dir("released-cached-keys");
  const Sweep s = sweep(dir, released_grid("[\"bf16\"]", "layout = \"interleaved\"\nseq_len = 64\nmem_len = 1000\nxpos = [true, false]\n"),
                        released("cached-keys"), {"--accept-convention", "origin,centre"});
  INFO(s.out);
  CHECK(s.status == 1);
  REQUIRE(s.records.size() == 2);
  for (const auto& rec : s.records) {
    INFO(rec.at("case_id") << ": " << rec.at("message"));
    CHECK(rec.at("outcome") == "TOLERANCE");
    CHECK(rec.at("diagnosis").at("kind") == "bug");
    CHECK(rec.at("diagnosis").at("verdict") == (rec.at("case").at("xpos") == true
                                                    ? "positions-in-dtype + origin + centres-differ"
                                                    : "positions-in-dtype + origin"));
  }
}

TEST_CASE("torchscale-shaped code passes over the default grid's lengths once its conventions are accepted",
          "[external][torch][conventions]") {
  if (!torch_available()) {
    WARN("skipped: " << kPython << " cannot import torch");
    return;
  }
  // The default grid's lengths on the axes the style implements (neighbour pairs,
  // XPOS, every feature rotated, no NTK): short and long, with and without memory, one
  // query row against 8192 memory keys, fp16 where SPEC's far keys leave the normal
  // range and where its own scales overflow. 183 records.
  const std::string grid = R"(name = "torchscale-lengths"
dtypes = ["fp32", "bf16", "fp16"]
[axes]
layout = "interleaved"
[[grid]]
head_dim = 64
seq_len = [1, 2, 7, 64, 127, 512, 1023, 2048, 4096]
mem_len = [0, 1, 100, 1024]
[[grid]]
head_dim = 128
seq_len = [1, 1024, 4096]
mem_len = [2048, 3072, 4096, 8192]
[[grid]]
head_dim = 128
seq_len = [7680, 8191, 9000, 9728, 12288, 16384]
mem_len = [0, 8192]
[[grid]]
head_dim = 128
seq_len = 7680
center = 0
)";
  ScratchDir dir("released-torchscale-lengths");
  const Sweep s = sweep(dir, grid, released("torchscale"), {"--accept-convention", "origin,centre"});
  INFO(s.out);
  CHECK(s.status == 0);
  CHECK(s.records.size() == 183);
  std::size_t accepted = 0;
  for (const auto& rec : s.records) {
    if (!rec.contains("diagnosis") || !rec.at("diagnosis").is_object()) continue;
    INFO(rec.at("case_id") << " " << rec.at("dtype") << ": " << rec.at("message"));
    CHECK(rec.at("diagnosis").at("kind") == "convention");
    accepted += rec.at("diagnosis").at("accepted") == true;
  }
  CHECK(accepted > 100);
}
