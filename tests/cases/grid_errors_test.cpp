// Every malformed grid names its file, line and key.
#include <catch2/catch.hpp>

#include <string>

#include "xposcheck/cases/grid.hpp"

using namespace xposcheck;

namespace {
// Parses `text` expecting a GridError; returns it for its fields to be checked.
GridError error_of(const std::string& text) {
  try {
    parse_grid(text, "bad.toml");
  } catch (const GridError& e) {
    return e;
  }
  FAIL("no GridError for:\n" << text);
  throw;  // unreachable: FAIL throws
}

void check_located(const GridError& e, long line, const std::string& key, const std::string& part) {
  INFO(e.what());
  CHECK(e.file == "bad.toml");
  CHECK(e.line == line);
  CHECK(e.key == key);
  CHECK_THAT(e.what(), Catch::Contains(part));
}
}  // namespace

TEST_CASE("GridError reads file:line: key 'k': problem") {
  GridError e("default.toml", 12, "rotary_dim", "invalid rotary_dim = 96");
  CHECK(std::string(e.what()) == "default.toml:12: key 'rotary_dim': invalid rotary_dim = 96");
  CHECK(std::string(GridError("g.toml", 0, "", "no cases").what()) == "g.toml: no cases");
}

TEST_CASE("a TOML syntax error keeps toml++'s line") {
  GridError e = error_of("[axes]\nhead_dim = [64,\nseq_len = 7\n");
  CHECK(e.file == "bad.toml");
  CHECK(e.line == 3);
  CHECK(e.key.empty());
  CHECK_THAT(e.what(), Catch::StartsWith("bad.toml:3: TOML syntax error"));
}

TEST_CASE("unknown keys suggest the closest valid key") {
  check_located(error_of("[axes]\nhead_dim = 64\nseqlen = [1, 7]\n"), 3, "seqlen",
                "did you mean 'seq_len'?");
  check_located(error_of("dtype = [\"fp32\"]\n[axes]\nhead_dim = 64\nseq_len = 1\n"), 1, "dtype",
                "did you mean 'dtypes'?");
  check_located(error_of("[axes]\nhead_dim = 64\nseq_len = 1\n[[grid]]\nhaed_dim = 2\n"), 5,
                "haed_dim", "did you mean 'head_dim'?");
  // Nothing close: list what is valid instead of guessing.
  check_located(error_of("[axes]\nhead_dim = 64\nseq_len = 1\nfoo = 2\n"), 4, "foo",
                "valid keys here: head_dim, rotary_dim, rotary_fraction, seq_len");
}

TEST_CASE("wrong value types") {
  check_located(error_of("[axes]\nhead_dim = 64\nseq_len = \"64\"\n"), 3, "seq_len",
                "expected an integer or a list of them, got string \"64\"");
  check_located(error_of("[axes]\nhead_dim = 64.0\nseq_len = 1\n"), 2, "head_dim",
                "expected an integer or a list of them, got float 64.0");
  check_located(error_of("[axes]\nhead_dim = 64\nseq_len = 1\nxpos = \"yes\"\n"), 4, "xpos",
                "expected true or false");
  check_located(error_of("[axes]\nhead_dim = 64\nseq_len = 1\nlayout = [\"half\", \"rotate_half\"]\n"),
                4, "layout", "expected \"half\" or \"interleaved\"");
  check_located(error_of("[axes]\nhead_dim = 64\nseq_len = [[1, 2]]\n"), 3, "seq_len",
                "lists do not nest");
  check_located(error_of("[axes]\nhead_dim = 64\nseq_len = 1\nrotary_dim = \"half\"\n"), 4,
                "rotary_dim", "expected an integer or \"full\"");
  check_located(error_of("[axes]\nhead_dim = 64\nseq_len = 1\nrotary_fraction = 1.5\n"), 4,
                "rotary_fraction", "expected a number in (0, 1]");
  check_located(error_of("name = 3\n[axes]\nhead_dim = 64\nseq_len = 1\n"), 1, "name",
                "expected a string, got integer 3");
  check_located(error_of("seeds = [-1]\n[axes]\nhead_dim = 64\nseq_len = 1\n"), 1, "seeds",
                "expected an integer >= 0");
  check_located(error_of("axes = 3\n"), 1, "axes", "expected a table");
  check_located(error_of("[axes]\nhead_dim = 64\nseq_len = 1\n[grid]\nseq_len = 2\n"), 4, "grid",
                "expected tables written [[grid]]");
}

TEST_CASE("a value on its own line of a multi-line list is located there") {
  check_located(error_of("[axes]\nhead_dim = 64\nseq_len = [\n  1,\n  7,\n  \"x\",\n]\n"), 6,
                "seq_len", "got string \"x\"");
}

TEST_CASE("empty lists") {
  check_located(error_of("[axes]\nhead_dim = 64\nseq_len = 1\nmem_len = []\n"), 4, "mem_len",
                "empty list");
  check_located(error_of("dtypes = []\n[axes]\nhead_dim = 64\nseq_len = 1\n"), 1, "dtypes",
                "empty list");
}

TEST_CASE("invalid parameter values point at the key that set them") {
  GridError e = error_of("[axes]\nhead_dim = 64\nrotary_dim = [32, 96]\nseq_len = 1\n");
  check_located(e, 3, "rotary_dim", "invalid rotary_dim = 96");
  CHECK_THAT(e.what(), Catch::StartsWith("bad.toml:3: key 'rotary_dim': invalid rotary_dim = 96: "));
  CHECK_THAT(e.what(), Catch::Contains("head_dim (= 64)"));

  // In a sub-grid, the sub-grid's own key.
  check_located(error_of("[axes]\nhead_dim = 64\nseq_len = 1\n\n[[grid]]\nseq_len = [4, 0]\n"), 6,
                "seq_len", "invalid seq_len = 0");
  check_located(error_of("[axes]\nhead_dim = 7\nseq_len = 1\n"), 2, "head_dim", "invalid head_dim = 7");
  check_located(error_of("[axes]\nhead_dim = 8\nseq_len = 1\nrotary_dim = 2\nbase_rescale = 2\n"), 5,
                "base_rescale", "invalid base_rescale = 2");
  check_located(error_of("[axes]\nhead_dim = 8\nseq_len = 1\nbase = 1\n"), 4, "base",
                "invalid base = 1");
  check_located(error_of("[axes]\nhead_dim = 64\nrotary_fraction = 0.3\nseq_len = 1\n"), 3,
                "rotary_fraction", "is not an even integer");
}

TEST_CASE("unknown dtype names") {
  check_located(error_of("dtypes = [\"fp32\", \"bf61\"]\n[axes]\nhead_dim = 64\nseq_len = 1\n"), 1,
                "dtypes", "unknown dtype 'bf61' (did you mean 'bf16'?)");
  check_located(error_of("dtypes = [\"int8\"]\n[axes]\nhead_dim = 64\nseq_len = 1\n"), 1, "dtypes",
                "unknown dtype 'int8' (valid: fp32, bf16, fp16)");
}

TEST_CASE("unknown pass names") {
  check_located(error_of("passes = [\"forward\", \"sideways\"]\n[axes]\nhead_dim = 64\nseq_len = 1\n"), 1,
                "passes", "expected \"forward\" or \"backward\", got");
}

TEST_CASE("exclude keys must be axes") {
  check_located(error_of("[axes]\nhead_dim = 64\nseq_len = 1\n[[exclude]]\nseqlen = 1\n"), 5, "seqlen",
                "did you mean 'seq_len'?");
  check_located(error_of("[axes]\nhead_dim = 64\nseq_len = 1\n[[exclude]]\n"), 4, "exclude",
                "empty [[exclude]]");
  check_located(error_of("[axes]\nhead_dim = 64\nseq_len = 1\n[[exclude]]\nseq_len = [1, \"x\"]\n"), 5,
                "seq_len", "expected an integer");
}

TEST_CASE("structural mistakes") {
  check_located(error_of("name = \"x\"\n"), 0, "axes", "missing");
  check_located(error_of("[axes]\nhead_dim = 64\n"), 1, "seq_len", "missing");
  check_located(error_of("[axes]\nseq_len = 1\n[[grid]]\nhead_dim = 64\n[[grid]]\nmem_len = 2\n"), 5,
                "head_dim", "missing");
  check_located(error_of("[axes]\nhead_dim = 64\nseq_len = 1\nrotary_dim = 32\nrotary_fraction = 0.5\n"),
                5, "rotary_fraction", "give rotary_dim or rotary_fraction, not both");
  check_located(error_of("[axes]\nhead_dim = 64\nseq_len = 1\n[[exclude]]\nhead_dim = 64\n"), 0, "",
                "no cases");
  check_located(error_of("[axes]\nhead_dim = [2,4,6,8,10,12,14,16,18,20]\nseq_len = [1,2,3,4,5,6,7,8,9,10]\n"
                         "mem_len = [0,1,2,3,4,5,6,7,8,9]\nbatch = [1,2,3,4,5,6,7,8,9,10]\n"
                         "heads = [1,2,3,4,5,6,7,8,9,10]\nbase = [2,3,4,5,6,7,8,9,10,11]\n"
                         "scale_base = [1,2,3,4,5,6,7,8,9,10]\n"),
                1, "", "more than 1000000 combinations");
}

TEST_CASE("tolerance mistakes") {
  const std::string axes = "[axes]\nhead_dim = 64\nseq_len = 1\n";
  check_located(error_of(axes + "[tolerance]\nrule = \"absolute\"\n"), 5, "rule",
                "expected \"position-aware\" or \"relative\"");
  check_located(error_of(axes + "[tolerance]\nbase_ulp = 4\n"), 5, "base_ulp",
                "did you mean 'base_ulps'?");
  check_located(error_of(axes + "[tolerance]\nbase_ulps = -1\n"), 5, "base_ulps", "must be finite and >= 0");
  check_located(error_of(axes + "[tolerance]\nbase_ulps = \"8\"\n"), 5, "base_ulps", "expected a number");
  check_located(error_of(axes + "[tolerance.bf16]\nangle_factr = 4\n"), 5, "angle_factr",
                "did you mean 'angle_factor'?");
  check_located(error_of(axes + "[tolerance]\nfp8 = 1\n"), 5, "fp8", "unknown key");
  check_located(error_of(axes + "[tolerance]\nfp16 = 1\n"), 5, "fp16", "expected a table");
}

TEST_CASE("a missing file is a located error too") {
  try {
    load_grid("/nonexistent/grid.toml");
    FAIL("no error");
  } catch (const GridError& e) {
    CHECK(e.file == "/nonexistent/grid.toml");
    CHECK(e.line == 0);
    CHECK_THAT(e.what(), Catch::Contains("cannot open"));
  }
}

TEST_CASE("a stream needs prefill and steps, and no seq_len") {
  check_located(error_of("[axes]\nhead_dim = 64\nseq_len = 9\nprefill = 1\nsteps = 8\n"), 3, "seq_len",
                "prefill + steps x step_rows");
  check_located(error_of("[axes]\nhead_dim = 64\nprefill = 4\n"), 3, "prefill", "needs both prefill and steps");
  check_located(error_of("[axes]\nhead_dim = 64\nsteps = 4\n"), 3, "steps", "needs both prefill and steps");
  check_located(error_of("[axes]\nhead_dim = 64\nprefill = 1\nsteps = 0\n"), 4, "steps", "between 1 and 2^30");
  check_located(error_of("[axes]\nhead_dim = 64\nprefill = 0\nsteps = 3\n"), 3, "prefill", "between 1 and");
  check_located(error_of("[axes]\nhead_dim = 64\nprefill = 2\nsteps = 3\nstep_rows = 0\n"), 5, "step_rows",
                "must be >= 1");
  check_located(error_of("[axes]\nhead_dim = 64\nprefill = 2\nsteps = 1073741824\nstep_rows = 9223372036854775807\n"),
                4, "steps", "overflows");
}

TEST_CASE("positions takes \"default\" or \"random:MAX\" with MAX from 1 to 2^22") {
  for (const char* bad : {"\"random:0\"", "\"random:\"", "\"random:x\"", "\"random:4194305\"", "\"sorted\"", "7"}) {
    INFO(bad);
    check_located(error_of(std::string("[axes]\nhead_dim = 16\nseq_len = 4\npositions = ") + bad + "\n"), 4,
                  "positions", "\"random:MAX\"");
  }
}

TEST_CASE("packed takes \"N[+M][@P], ...\" and its sizes alone") {
  for (const char* bad : {"\"\"", "\"64,\"", "\"a\"", "\"+3\"", "\"4+\"", "\"4@\"", "\"4@x\"", "\"1 2\"", "7"}) {
    INFO(bad);
    check_located(error_of(std::string("[axes]\nhead_dim = 16\npacked = ") + bad + "\n"), 3, "packed",
                  "packed batch");
  }
  check_located(error_of("[axes]\nhead_dim = 16\nseq_len = 4\npacked = \"4, 5\"\n"), 3, "seq_len",
                "a packed batch's sizes are its sequences'");
  check_located(error_of("[axes]\nhead_dim = 16\nmem_len = 4\npacked = \"4, 5\"\n"), 3, "mem_len",
                "a packed batch's sizes are its sequences'");
  check_located(error_of("[axes]\nhead_dim = 16\nbatch = 2\npacked = \"4, 5\"\n"), 3, "batch",
                "must be 1 for a packed batch");
  check_located(error_of("[axes]\nhead_dim = 16\ncenter = 3\npacked = \"4, 5\"\n"), 3, "center",
                "each sequence has its own");
}
