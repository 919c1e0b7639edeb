// `xposcheck golden`: the exact outputs of one case, for seeded or given inputs, as
// .npy files plus a case.json describing how they were made.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "numeric_flags.hpp"
#include "xposcheck/harness/limits.hpp"
#include "xposcheck/reference/atomic_file.hpp"
#include "xposcheck/reference/case.hpp"
#include "xposcheck/reference/case_json.hpp"
#include "xposcheck/reference/dtype.hpp"
#include "xposcheck/reference/golden.hpp"
#include "xposcheck/reference/inputs.hpp"
#include "xposcheck/reference/npy.hpp"
#include "xposcheck/version.hpp"

namespace xposcheck::cli {
namespace {

namespace fs = std::filesystem;

struct GoldenArgs {
  Case c;
  long rotary_dim = 0, center = 0;
  std::string layout = "half";
  bool no_xpos = false;
  std::string q_in, k_in;
  std::uint64_t seed = 1;
  std::string dtype = "fp32";
  bool exact = false;
  std::size_t logit_rows = kGoldenLogitRows;
  std::string out;
  // Set by setup_golden: whether an option was given, for values without a sentinel.
  CLI::Option *rotary_opt = nullptr, *center_opt = nullptr, *batch_opt = nullptr,
              *heads_opt = nullptr;
};

// The inputs a golden run uses, and how to describe them in case.json.
struct LoadedInputs {
  Inputs in;                // always [batch, heads, rows, D]
  Shape leading;            // the leading dimensions outputs get: [b, h] when generated
  std::string dtype;        // "fp32" etc., or the files' descr
  nlohmann::json source;
};

Case resolve_case(const GoldenArgs& a) {
  Case c = a.c;
  if (a.rotary_opt->count() > 0) c.rotary_dim = a.rotary_dim;
  if (a.center_opt->count() > 0) c.center = a.center;
  c.layout = parse_layout(a.layout).value();  // CLI11 checked the name
  c.xpos = !a.no_xpos;
  return c;
}

NpyArray read_input(const std::string& file, const char* flag) {
  NpyArray a;
  try {
    // uint16 inputs are bf16 bit patterns, the only way NumPy can carry bf16.
    a = read_npy(file, /*u2_is_bf16=*/true);
  } catch (const NpyError& e) {
    throw std::runtime_error(fmt::format("{}: {}", flag, e.what()));
  }
  for (std::size_t i = 0; i < a.tensor.size(); ++i) {
    if (!std::isfinite(a.tensor.data[i])) {
      throw std::runtime_error(fmt::format("{} {}: element {} is {}; inputs must be finite",
                                           flag, file, i, a.tensor.data[i]));
    }
  }
  if (a.tensor.rank() < 2 || a.tensor.rank() > 4) {
    throw std::runtime_error(fmt::format(
        "{} {}: shape {} has rank {}; inputs are [rows, D], [heads, rows, D] or "
        "[batch, heads, rows, D]", flag, file, shape_string(a.tensor.shape), a.tensor.rank()));
  }
  return a;
}

void check_rows(const std::string& file, const Tensor& t, const char* flag, long d,
                const char* rows_name, long rows) {
  const std::size_t r = t.rank();
  if (t.shape[r - 1] != std::size_t(d)) {
    throw std::runtime_error(fmt::format("{} {}: last dimension {} != --head-dim {}", flag,
                                         file, t.shape[r - 1], d));
  }
  if (t.shape[r - 2] != std::size_t(rows)) {
    throw std::runtime_error(fmt::format("{} {}: {} rows, expected {} = {}", flag, file,
                                         t.shape[r - 2], rows_name, rows));
  }
}

// Leading dimensions give batch and heads; explicit --batch/--heads must agree.
void take_leading(Case& c, const GoldenArgs& a, const Shape& leading) {
  const long heads = leading.empty() ? 1 : long(leading.back());
  const long batch = leading.size() < 2 ? 1 : long(leading.front());
  if (a.batch_opt->count() > 0 && a.c.batch != batch) {
    throw std::runtime_error(fmt::format("--batch {} disagrees with the inputs' leading "
                                         "dimensions {}", a.c.batch, shape_string(leading)));
  }
  if (a.heads_opt->count() > 0 && a.c.heads != heads) {
    throw std::runtime_error(fmt::format("--heads {} disagrees with the inputs' leading "
                                         "dimensions {}", a.c.heads, shape_string(leading)));
  }
  c.batch = batch;
  c.heads = heads;
}

Tensor reshaped(Tensor t, Shape shape) {
  t.shape = std::move(shape);
  return t;
}

LoadedInputs load_files(Case& c, const GoldenArgs& a) {
  NpyArray q_file = read_input(a.q_in, "--q-in");
  Tensor q = std::move(q_file.tensor), k = read_input(a.k_in, "--k-in").tensor;
  check_rows(a.q_in, q, "--q-in", c.head_dim, "--seq-len", c.seq_len);
  check_rows(a.k_in, k, "--k-in", c.head_dim, "--mem-len + --seq-len", c.key_rows());
  const Shape leading(q.shape.begin(), q.shape.end() - 2);
  if (!std::equal(leading.begin(), leading.end(), k.shape.begin(), k.shape.end() - 2)) {
    throw std::runtime_error(fmt::format(
        "leading dimensions differ: --q-in {} has shape {}, --k-in {} has shape {}", a.q_in,
        shape_string(q.shape), a.k_in, shape_string(k.shape)));
  }
  take_leading(c, a, leading);
  validate(c);
  nlohmann::json source = {{"source", "files"}, {"q_in", a.q_in}, {"k_in", a.k_in}};
  return {{reshaped(std::move(q), c.q_shape()), reshaped(std::move(k), c.k_shape())},
          leading, q_file.descr, source};
}

LoadedInputs load_generated(const Case& c, const GoldenArgs& a) {
  const DType t = parse_dtype(a.dtype).value();  // CLI11 checked the name
  nlohmann::json source = {{"source", "generated"}, {"seed", a.seed}};
  return {generate_inputs(c, a.seed, t), {std::size_t(c.batch), std::size_t(c.heads)},
          std::string(dtype_name(t)), source};
}

// Outputs keep the leading dimensions of the inputs: [rows, D] in, [rows, D] out.
Shape with_leading(const Shape& leading, const Shape& full) {
  Shape s = leading;
  s.insert(s.end(), full.end() - 2, full.end());
  return s;
}

double max_abs(const Tensor& t) {
  double m = 0.0;
  for (double v : t.data) m = std::max(m, std::fabs(v));
  return m;
}

fs::path prepare_out(const std::string& out) {
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec || !fs::is_directory(out)) {
    throw std::runtime_error(fmt::format("--out {}: cannot create directory{}", out,
                                         ec ? ": " + ec.message() : std::string()));
  }
  return out;
}

int run_golden(const GoldenArgs& a) {
  Case c = resolve_case(a);
  const bool from_files = !a.q_in.empty();
  if (!from_files) {
    validate(c);
    check_case_memory({GridCase{case_id(c), c, a.seed}}, a.logit_rows);
  }
  const LoadedInputs li = from_files ? load_files(c, a) : load_generated(c, a);
  const fs::path dir = prepare_out(a.out);

  const GoldenOptions options{true, a.logit_rows};
  const Golden g = a.exact ? golden_exact(c, li.in.q, li.in.k, options)
                           : golden_fast(c, li.in.q, li.in.k, options);
  const Tensor q_out = reshaped(g.q_out, with_leading(li.leading, c.q_shape()));
  const Tensor k_out = reshaped(g.k_out, with_leading(li.leading, c.k_shape()));
  const Tensor logits = reshaped(g.logits, with_leading(li.leading, g.logits.shape));
  write_npy(dir / "q_in.npy", reshaped(li.in.q, q_out.shape));
  write_npy(dir / "k_in.npy", reshaped(li.in.k, k_out.shape));
  write_npy(dir / "q_out.npy", q_out);
  write_npy(dir / "k_out.npy", k_out);
  write_npy(dir / "logits.npy", logits);

  const bool sampled = g.logit_rows.size() < std::size_t(c.seq_len);
  nlohmann::json j = {
      {"tool", "xposcheck"}, {"version", kVersion}, {"case_id", case_id(c)},
      {"case", c}, {"dtype", li.dtype}, {"inputs", li.source},
      {"seed", from_files ? nlohmann::json() : nlohmann::json(a.seed)},
      {"golden", a.exact ? "exact" : "fast"}, {"max_logit_rows", a.logit_rows},
      {"logit_rows", sampled ? nlohmann::json(g.logit_rows) : nlohmann::json()},
      {"shapes", {{"q_out", q_out.shape}, {"k_out", k_out.shape}, {"logits", logits.shape}}}};
  write_atomically(dir / "case.json", j.dump(2) + "\n");

  fmt::print("golden {} ({} path, {} inputs{})\n", case_id(c), a.exact ? "exact" : "fast",
             li.dtype, from_files ? "" : fmt::format(", seed {}", a.seed));
  fmt::print("  q_out  {}  max |q_out| = {:.6g}\n", shape_string(q_out.shape), max_abs(q_out));
  fmt::print("  k_out  {}  max |k_out| = {:.6g}\n", shape_string(k_out.shape), max_abs(k_out));
  fmt::print("  logits {}{}\n", shape_string(logits.shape),
             sampled ? fmt::format("  ({} sampled query rows)", g.logit_rows.size()) : "");
  fmt::print("  wrote q_in, k_in, q_out, k_out, logits (.npy) and case.json to {}\n",
             dir.string());
  return kExitOk;
}

CLI::Validator dtype_validator() {
  return CLI::Validator(
      [](std::string& s) {
        return parse_dtype(s) ? std::string() : "unknown dtype '" + s + "' (fp32, bf16, fp16)";
      },
      "fp32|bf16|fp16", "dtype");
}

}  // namespace

void setup_golden(CLI::App& app, ExitStatus& status) {
  auto args = std::make_shared<GoldenArgs>();
  GoldenArgs& a = *args;
  CLI::App* sub = app.add_subcommand(
      "golden", "Write the exact outputs (q_out, k_out, logits) of one case as .npy files");
  sub->add_option("--head-dim", a.c.head_dim, "D: features per head (even, >= 2)")->required();
  sub->add_option("--seq-len", a.c.seq_len, "N: current segment length (>= 1)")->required();
  sub->add_option("--mem-len", a.c.mem_len, "M: memory length (>= 0)")->capture_default_str();
  a.rotary_opt = sub->add_option("--rotary-dim", a.rotary_dim, "R: rotated features (default D)");
  sub->add_option("--base", a.c.base, "theta: RoPE base (> 1)")
      ->check(FiniteRange(1, kNoLimit, true))->capture_default_str();
  sub->add_option("--base-rescale", a.c.base_rescale, "f: NTK-aware base rescale (>= 1)")
      ->check(FiniteRange(1))->capture_default_str();
  sub->add_option("--interpolation", a.c.interpolation, "alpha: position interpolation (>= 1)")
      ->check(FiniteRange(1))->capture_default_str();
  sub->add_option("--scale-base", a.c.scale_base, "B: XPOS scale base (> 0)")
      ->check(FinitePositive())->capture_default_str();
  sub->add_flag("--no-xpos", a.no_xpos, "Plain rotary: no XPOS scaling");
  sub->add_option("--layout", a.layout, "Rotated pairs: half (NeoX) or interleaved (GPT-J)")
      ->check(CLI::IsMember({"half", "interleaved"}))
      ->capture_default_str();
  a.center_opt = sub->add_option("--center", a.center, "c: XPOS centre position (default N/2)");
  a.batch_opt = sub->add_option("--batch", a.c.batch, "Batch size (>= 1)")->capture_default_str();
  a.heads_opt = sub->add_option("--heads", a.c.heads, "Heads (>= 1)")->capture_default_str();
  CLI::Option* q_in = sub->add_option("--q-in", a.q_in, "Query inputs (.npy, [..., N, D])");
  CLI::Option* k_in = sub->add_option("--k-in", a.k_in, "Key inputs (.npy, [..., M+N, D])");
  q_in->needs(k_in);
  k_in->needs(q_in);
  sub->add_option("--seed", a.seed, "Seed of the generated inputs")
      ->capture_default_str()
      ->excludes(q_in);
  sub->add_option("--dtype", a.dtype, "Dtype the generated inputs are rounded to")
      ->check(dtype_validator())
      ->capture_default_str()
      ->excludes(q_in);
  sub->add_flag("--exact", a.exact, "Use the multiprecision path instead of double-double");
  sub->add_option("--logit-rows", a.logit_rows,
                  "Query rows whose logits are written (sampled evenly; 0 = all)")
      ->capture_default_str();
  sub->add_option("--out", a.out, "Output directory")->required();
  sub->callback([args, &status] { status.code = run_golden(*args); });
}

}  // namespace xposcheck::cli
