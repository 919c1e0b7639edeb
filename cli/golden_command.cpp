// `xposcheck golden`: the exact outputs of one case, for seeded or given inputs, as
// .npy files plus a case.json describing how they were made.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "golden_files.hpp"
#include "numeric_flags.hpp"
#include "xposcheck/harness/limits.hpp"
#include "xposcheck/reference/atomic_file.hpp"
#include "xposcheck/reference/case.hpp"
#include "xposcheck/reference/case_json.hpp"
#include "xposcheck/reference/dtype.hpp"
#include "xposcheck/reference/golden.hpp"
#include "xposcheck/reference/golden_blocks.hpp"
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
struct InputSource {
  std::optional<Inputs> in;  // the files' values ([batch, heads, rows, D]); none when drawn
  DType drawn = DType::fp32; // the dtype drawn inputs are rounded to
  Shape leading;             // the leading dimensions outputs get: [b, h] when generated
  std::string dtype;         // "fp32" etc., or the files' descr
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

InputSource load_files(Case& c, const GoldenArgs& a) {
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
  return {Inputs{reshaped(std::move(q), c.q_shape()), reshaped(std::move(k), c.k_shape())},
          DType::fp32, leading, q_file.descr, source};
}

// Generated inputs are drawn block by block as the blocks are made (or whole for
// --exact), never loaded.
InputSource generated_source(const Case& c, const GoldenArgs& a) {
  const DType t = parse_dtype(a.dtype).value();  // CLI11 checked the name
  nlohmann::json source = {{"source", "generated"}, {"seed", a.seed}};
  return {std::nullopt, t, {std::size_t(c.batch), std::size_t(c.heads)},
          std::string(dtype_name(t)), source};
}

BlockInputs block_inputs(const Case& c, const GoldenArgs& a, const InputSource& src) {
  if (!src.in) {
    return [&c, &a, &src](GoldenBlock& b) {
      generate_rows(c, a.seed, src.drawn, b.query, b.first, b.count, b.in.data());
    };
  }
  return [&c, &src](GoldenBlock& b) {
    const Tensor& t = b.query ? src.in->q : src.in->k;
    const long rows = b.query ? c.seq_len : c.key_rows(), d = c.head_dim;
    for (long h = 0; h < c.batch * c.heads; ++h)
      std::copy_n(t.row(std::size_t(h * rows + b.first)), b.count * d, &b.in[std::size_t(h * b.count * d)]);
  };
}

// The exact path works on whole tensors; they reach the files as one block each.
std::vector<long> exact_blocks(const Case& c, const GoldenArgs& a, const InputSource& src,
                               const GoldenOptions& options, const BlockSink& sink) {
  Inputs in = src.in ? *src.in : generate_inputs(c, a.seed, src.drawn);
  Golden g = golden_exact(c, in.q, in.k, options);
  GoldenBlock q{true, 0, c.seq_len, std::move(in.q.data), std::move(g.q_out.data), {}};
  sink(q);
  GoldenBlock k{false, 0, c.key_rows(), std::move(in.k.data), std::move(g.k_out.data),
                std::move(g.logits.data)};
  sink(k);
  return g.logit_rows;
}

// What a run holds at once. The fast path: kGoldenBlocksHeld blocks (inputs, outputs,
// double-double keys, table rows, logits) and the sampled query rows in double-double;
// the exact path: the whole case, as a sweep holds it.
void check_golden_memory(const Case& c, const GoldenArgs& a) {
  if (a.exact) return check_case_memory({GridCase{case_id(c), c, a.seed}}, a.logit_rows);
  const std::size_t rows = logit_rows(c.seq_len, a.logit_rows).size();
  const double width = double(c.batch) * double(c.heads) * double(c.head_dim);
  const double block = double(golden_block_rows(c));
  const double per_block = block * (4 * width + double(c.batch * c.heads) * double(rows) +
                                    8 * double(c.pairs()));
  const double bytes = 8 * (double(kGoldenBlocksHeld) * per_block + 2 * width * double(rows));
  check_memory(case_id(c), bytes, "blocks of inputs, outputs and logits, and the sampled query rows");
}

// Outputs keep the leading dimensions of the inputs: [rows, D] in, [rows, D] out.
Shape with_leading(const Shape& leading, const Shape& full) {
  Shape s = leading;
  s.insert(s.end(), full.end() - 2, full.end());
  return s;
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

// Blocks go from the golden path to the files through the pipe, so that the next block
// is computed while one is written.
std::vector<long> write_golden(const Case& c, const GoldenArgs& a, const InputSource& src,
                               GoldenFiles& files) {
  const GoldenOptions options{true, a.logit_rows};
  BlockPipe pipe([&files](const GoldenBlock& b) { files.write(b); }, kGoldenPipeDepth);
  const BlockSink sink = [&pipe](GoldenBlock& b) { pipe.put(b); };
  std::vector<long> rows =
      a.exact ? exact_blocks(c, a, src, options, sink)
              : golden_fast_blocks(c, block_inputs(c, a, src), options, golden_block_rows(c), sink);
  pipe.finish();
  files.commit();
  return rows;
}

int run_golden(const GoldenArgs& a) {
  Case c = resolve_case(a);
  const bool from_files = !a.q_in.empty();
  if (!from_files) {
    validate(c);
    check_golden_memory(c, a);
  }
  const InputSource src = from_files ? load_files(c, a) : generated_source(c, a);
  const fs::path dir = prepare_out(a.out);

  const std::size_t logit_count = logit_rows(c.seq_len, a.logit_rows).size();
  const Shape q_shape = with_leading(src.leading, c.q_shape());
  const Shape k_shape = with_leading(src.leading, c.k_shape());
  const Shape logits_shape = with_leading(src.leading, {logit_count, std::size_t(c.key_rows())});
  GoldenFiles files(dir, q_shape, k_shape, logits_shape);
  const std::vector<long> rows = write_golden(c, a, src, files);

  const bool sampled = rows.size() < std::size_t(c.seq_len);
  nlohmann::json j = {
      {"tool", "xposcheck"}, {"version", kVersion}, {"case_id", case_id(c)},
      {"case", c}, {"dtype", src.dtype}, {"inputs", src.source},
      {"seed", from_files ? nlohmann::json() : nlohmann::json(a.seed)},
      {"golden", a.exact ? "exact" : "fast"}, {"max_logit_rows", a.logit_rows},
      {"logit_rows", sampled ? nlohmann::json(rows) : nlohmann::json()},
      {"shapes", {{"q_out", q_shape}, {"k_out", k_shape}, {"logits", logits_shape}}}};
  write_atomically(dir / "case.json", j.dump(2) + "\n");

  fmt::print("golden {} ({} path, {} inputs{})\n", case_id(c), a.exact ? "exact" : "fast",
             src.dtype, from_files ? "" : fmt::format(", seed {}", a.seed));
  fmt::print("  q_out  {}  max |q_out| = {:.6g}\n", shape_string(q_shape), files.max_abs_q_out());
  fmt::print("  k_out  {}  max |k_out| = {:.6g}\n", shape_string(k_shape), files.max_abs_k_out());
  fmt::print("  logits {}{}\n", shape_string(logits_shape),
             sampled ? fmt::format("  ({} sampled query rows)", rows.size()) : "");
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
