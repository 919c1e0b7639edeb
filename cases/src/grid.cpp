// Loading a grid file: the top-level keys, sub-grids laid over [axes], excludes, and
// the fingerprint that lets shards of one grid be checked against each other.
#include <algorithm>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "grid_detail.hpp"
#include "xposcheck/reference/golden.hpp"

namespace xposcheck {

namespace gd = grid_detail;

namespace {

constexpr std::string_view kTopKeys[] = {"name", "description", "dtypes",  "passes", "seeds",
                                         "axes", "grid",        "exclude", "tolerance"};
constexpr std::string_view kDTypeNames[] = {"fp32", "bf16", "fp16"};

struct Entry {
  const toml::key& key;
  const toml::node& node;
};

std::string read_string(Entry e, const std::string& file) {
  auto text = e.node.value_exact<std::string>();
  if (!text) gd::fail(file, gd::line_of(e.key), e.key.str(), "expected a string, got " + gd::describe(e.node));
  return *text;
}

// A scalar or a non-empty list of scalars, each passed to `read` with its node.
template <class F>
void for_each_value(Entry e, const std::string& file, F read) {
  if (const toml::array* list = e.node.as_array()) {
    if (list->empty()) gd::fail(file, gd::line_of(e.key), e.key.str(), "empty list: give at least one value");
    for (const toml::node& element : *list) read(element);
  } else {
    read(e.node);
  }
}

std::vector<DType> read_dtypes(Entry e, const std::string& file) {
  std::vector<DType> out;
  for_each_value(e, file, [&](const toml::node& n) {
    auto text = n.value_exact<std::string>();
    if (!text) gd::fail(file, gd::line_of(n), "dtypes", "expected a dtype name, got " + gd::describe(n));
    auto dtype = parse_dtype(*text);
    if (!dtype) {
      std::string guess = gd::closest(*text, kDTypeNames);
      gd::fail(file, gd::line_of(n), "dtypes",
               fmt::format("unknown dtype '{}' ({})", *text,
                           guess.empty() ? "valid: fp32, bf16, fp16" : "did you mean '" + guess + "'?"));
    }
    if (std::find(out.begin(), out.end(), *dtype) == out.end()) out.push_back(*dtype);
  });
  return out;
}

// "passes": which passes every case runs, forward (the outputs) and/or backward (the
// gradients); default forward alone.
std::vector<Pass> read_passes(Entry e, const std::string& file) {
  std::vector<Pass> out;
  for_each_value(e, file, [&](const toml::node& n) {
    auto text = n.value_exact<std::string>();
    const std::optional<Pass> pass = text ? parse_pass(*text) : std::nullopt;
    if (!pass) {
      gd::fail(file, gd::line_of(n), "passes",
               fmt::format("expected \"{}\" or \"{}\", got {}", pass_name(Pass::forward),
                           pass_name(Pass::backward), gd::describe(n)));
    }
    if (std::find(out.begin(), out.end(), *pass) == out.end()) out.push_back(*pass);
  });
  return out;
}

std::vector<std::uint64_t> read_seeds(Entry e, const std::string& file) {
  std::vector<std::uint64_t> out;
  for_each_value(e, file, [&](const toml::node& n) {
    auto seed = n.value_exact<std::int64_t>();
    if (!seed || *seed < 0) {
      gd::fail(file, gd::line_of(n), "seeds", "expected an integer >= 0, got " + gd::describe(n));
    }
    auto s = static_cast<std::uint64_t>(*seed);
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
  });
  return out;
}

const toml::table& require_table(Entry e, const std::string& file) {
  const toml::table* t = e.node.as_table();
  if (!t) gd::fail(file, gd::line_of(e.key), e.key.str(), "expected a table, got " + gd::describe(e.node));
  return *t;
}

// [[grid]] and [[exclude]]: arrays of tables.
std::vector<const toml::table*> require_tables(Entry e, const std::string& file) {
  const toml::array* list = e.node.as_array();
  std::vector<const toml::table*> out;
  if (list) {
    for (const toml::node& element : *list) out.push_back(element.as_table());
  }
  if (!list || std::count(out.begin(), out.end(), nullptr) > 0) {
    gd::fail(file, gd::line_of(e.key), e.key.str(),
             fmt::format("expected tables written [[{}]], got {}", e.key.str(), gd::describe(e.node)));
  }
  return out;
}

// Everything a grid file declares, before expansion.
struct Declared {
  Grid grid;
  std::vector<std::uint64_t> seeds{1};
  gd::AxisTable axes;
  long axes_line = 0;
  bool has_axes = false;
  std::vector<gd::SubGrid> subgrids;
  std::vector<gd::Exclude> excludes;
};

void read_subgrids(Entry e, Declared& d, const std::string& file) {
  for (const toml::table* t : require_tables(e, file)) {
    gd::AxisTable own = gd::read_axes(*t, file);
    gd::SubGrid g{d.axes, gd::line_of(*t)};  // inherits [axes] ...
    for (std::size_t i = 0; i < gd::kAxisCount; ++i)
      if (own[i]) g.axes[i] = own[i];        // ... and overrides what it names
    d.subgrids.push_back(std::move(g));
  }
}

void read_excludes(Entry e, Declared& d, const std::string& file) {
  for (const toml::table* t : require_tables(e, file)) {
    if (t->empty()) gd::fail(file, gd::line_of(*t), "exclude", "empty [[exclude]] would drop every case");
    d.excludes.push_back(gd::Exclude{gd::read_axes(*t, file), gd::line_of(*t)});
  }
}

// [axes] must be read before [[grid]] (which inherits it) whatever the file order.
void read_axes_table(const toml::table& root, Declared& d, const std::string& file) {
  for (auto [key, node] : gd::in_file_order(root)) {
    if (key->str() != "axes") continue;
    const toml::table& t = require_table({*key, *node}, file);
    d.axes = gd::read_axes(t, file);
    d.axes_line = gd::line_of(t);
    d.has_axes = true;
  }
}

void read_entry(Entry e, Declared& d, const std::string& file) {
  std::string_view k = e.key.str();
  if (k == "name") d.grid.name = read_string(e, file);
  else if (k == "description") d.grid.description = read_string(e, file);
  else if (k == "dtypes") d.grid.dtypes = read_dtypes(e, file);
  else if (k == "passes") d.grid.passes = read_passes(e, file);
  else if (k == "seeds") d.seeds = read_seeds(e, file);
  else if (k == "axes") return;  // read first, by read_axes_table
  else if (k == "grid") read_subgrids(e, d, file);
  else if (k == "exclude") read_excludes(e, d, file);
  else if (k == "tolerance") d.grid.tolerance = gd::read_tolerance(require_table(e, file), file);
  else gd::fail(file, gd::line_of(e.key), k, gd::unknown_key_problem(k, kTopKeys));
}

Declared read_declared(const toml::table& root, const std::string& file) {
  Declared d;
  d.grid.dtypes.assign(std::begin(kAllDTypes), std::end(kAllDTypes));
  read_axes_table(root, d, file);
  for (auto [key, node] : gd::in_file_order(root)) read_entry({*key, *node}, d, file);
  if (d.subgrids.empty()) {
    if (!d.has_axes) gd::fail(file, 0, "axes", "missing: a grid file needs [axes] or [[grid]] tables");
    d.subgrids.push_back(gd::SubGrid{d.axes, d.axes_line});
  }
  return d;
}

// Name, description and file path are left out: renaming a grid does not change
// what runs.
std::string fingerprint(const Grid& g) {
  std::uint64_t h = fnv1a64("xposcheck-grid-v1\n");
  for (DType t : g.dtypes) h = fnv1a64(fmt::format("dtype={}\n", dtype_name(t)), h);
  // Forward alone is left out, so that grids written before passes keep their print.
  if (g.passes != std::vector<Pass>{Pass::forward})
    for (Pass p : g.passes) h = fnv1a64(fmt::format("pass={}\n", pass_name(p)), h);
  h = fnv1a64(gd::canonical_text(g.tolerance), h);
  for (const GridCase& c : g.cases) {
    h = fnv1a64(fmt::format("case={} seed={} {}\n", c.id, c.seed, gd::canonical_params(c.params)), h);
  }
  return fmt::format("{:016x}", h);
}

}  // namespace

std::uint64_t fnv1a64(std::string_view text, std::uint64_t h) {
  for (unsigned char ch : text) {
    h ^= ch;
    h *= 0x100000001b3ULL;
  }
  return h;
}

Grid parse_grid(std::string_view toml_text, const std::string& source_name) {
  toml::table root;
  try {
    root = toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& e) {
    throw GridError(source_name, static_cast<long>(e.source().begin.line), "",
                    fmt::format("TOML syntax error: {}", e.description()));
  }
  Declared d = read_declared(root, source_name);
  Grid g = std::move(d.grid);
  g.source = source_name;
  if (g.name.empty()) g.name = std::filesystem::path(source_name).stem().string();
  g.cases = gd::expand(d.subgrids, d.excludes, d.seeds, source_name);
  g.fingerprint = fingerprint(g);
  return g;
}

Grid load_grid(const std::filesystem::path& file) {
  // A grid is a few kilobytes of TOML: a device or a FIFO (/dev/zero) would be read
  // until memory ran out.
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) throw GridError(file.string(), 0, "", "cannot open the grid file: it does not exist");
  if (!std::filesystem::is_regular_file(file, ec))
    throw GridError(file.string(), 0, "", "not a regular file: a grid is a TOML file");
  const auto size = std::filesystem::file_size(file, ec);
  if (ec || size > kMaxGridFileBytes) {
    throw GridError(file.string(), 0, "", fmt::format("{} bytes, above the limit of {} bytes (16 MiB) for a grid file",
                                                      ec ? std::string("unknown") : std::to_string(size), kMaxGridFileBytes));
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) throw GridError(file.string(), 0, "", "cannot open the grid file");
  std::string text(static_cast<std::size_t>(size), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  return parse_grid(text, file.string());
}

// Units: millions of element operations. Each q_out/k_out element costs one golden,
// one candidate and one compare evaluation; the sampled logits (at most kGoldenLogitRows
// query rows against every key row) cost one multiply-add per feature, counted the
// same. A fixed weight, not the sweep's --logit-rows: shards must not move with it.
double estimated_cost(const Case& c) {
  const double copies = static_cast<double>(c.batch) * static_cast<double>(c.heads);
  const double d = static_cast<double>(c.head_dim);
  const double n = static_cast<double>(c.seq_len);
  const double keys = static_cast<double>(c.key_rows());
  const double outputs = (n + keys) * d;
  const double logits = std::min(n, static_cast<double>(kGoldenLogitRows)) * keys * d;
  return 1e-6 * copies * (outputs + logits);
}

}  // namespace xposcheck
