#pragma once
// Case grids: TOML files declaring axes, expanded as a cartesian product.
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "xposcheck/cases/tolerance_spec.hpp"
#include "xposcheck/reference/case.hpp"
#include "xposcheck/reference/dtype.hpp"
#include "xposcheck/reference/pass.hpp"

namespace xposcheck {

// A malformed grid file: what() reads "FILE:LINE: key 'KEY': problem".
struct GridError : std::runtime_error {
  GridError(std::string file, long line, std::string key, const std::string& problem);
  std::string file;
  long line;  // 0 when unknown
  std::string key;
};

// FNV-1a (64 bits) of text's bytes, continuing from h: the grid fingerprint's hash, and
// the digest of the files a candidate's command names (RunInfo::candidate_code).
std::uint64_t fnv1a64(std::string_view text, std::uint64_t h = 0xcbf29ce484222325ULL);

struct GridCase {
  std::string id;       // unique within the grid: case_id(params) + "-s" + seed
  Case params;
  std::uint64_t seed = 1;
};

struct Grid {
  std::string name;
  std::string description;
  std::string source;               // file path, or the name given to parse_grid
  std::string fingerprint;          // hash of the expanded cases, dtypes and tolerances
  std::vector<DType> dtypes;
  std::vector<Pass> passes{Pass::forward};  // "passes": forward and/or backward
  std::vector<GridCase> cases;      // in declaration order, duplicates removed
  ToleranceOverrides tolerance;
};

// Limits of a grid (docs/grids.md): every case is meant to run, so a larger expansion
// is a mistake in the file; a grid file is a regular file of at most 16 MiB.
inline constexpr std::size_t kMaxGridCases = 1'000'000;          // all sub-grids x seeds
inline constexpr std::uintmax_t kMaxGridFileBytes = 16u << 20;

Grid load_grid(const std::filesystem::path& file);
Grid parse_grid(std::string_view toml_text, const std::string& source_name);

// A rough cost of running one case (proportional to output elements plus sampled
// logits), used to balance parallel work and shards.
double estimated_cost(const Case& c);

}  // namespace xposcheck
