#include "external/plugin_abi.hpp"

#include <dlfcn.h>

#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "xposcheck/reference/case_json.hpp"

namespace xposcheck::external {
namespace {

using nlohmann::json;

template <class F>
F symbol(void* handle, const std::string& path, const char* name) {
  void* p = ::dlsym(handle, name);
  if (!p) {
    throw std::runtime_error(fmt::format(
        "{}: does not export {} (see include/xposcheck/candidate.h; C++ needs extern \"C\")",
        path, name));
  }
  return reinterpret_cast<F>(p);
}

std::size_t dtype_size(int32_t dtype) { return dtype == XPOSCHECK_DTYPE_FP32 ? 4 : 2; }

}  // namespace

Plugin load_plugin(const std::string& path) {
  Plugin p;
  p.handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!p.handle) {
    const char* why = ::dlerror();
    throw std::runtime_error(fmt::format("cannot load {}: {}", path, why ? why : "unknown error"));
  }
  p.abi_version = symbol<xposcheck_abi_version_fn>(p.handle, path, "xposcheck_candidate_abi_version");
  p.describe = symbol<xposcheck_describe_fn>(p.handle, path, "xposcheck_describe");
  p.run = symbol<xposcheck_run_fn>(p.handle, path, "xposcheck_run");
  p.run_backward = reinterpret_cast<xposcheck_run_backward_fn>(::dlsym(p.handle, "xposcheck_run_backward"));
  p.version = p.abi_version();
  if (p.version < kOldestAbiVersion || p.version > XPOSCHECK_CANDIDATE_ABI_VERSION) {
    throw std::runtime_error(fmt::format("{}: implements candidate ABI version {}; this xposcheck "
                                         "speaks versions {} to {}",
                                         path, p.version, kOldestAbiVersion,
                                         XPOSCHECK_CANDIDATE_ABI_VERSION));
  }
  return p;
}

std::string unsupported(const xposcheck_case& c, uint32_t version) {
  if (!c.key_positions || version >= kPositionsAbiVersion) return "";
  // Calling it would place the rows by first_position and fail with a misleading
  // TOLERANCE; the plugin's author needs to know what to implement instead.
  return fmt::format("unsupported: explicit positions (one per row) need native candidate ABI "
                     "version {} (xposcheck_case.key_positions); the plugin declares version {}",
                     kPositionsAbiVersion, version);
}

int32_t abi_dtype(const std::string& name) {
  if (name == "fp32") return XPOSCHECK_DTYPE_FP32;
  if (name == "bf16") return XPOSCHECK_DTYPE_BF16;
  if (name == "fp16") return XPOSCHECK_DTYPE_FP16;
  throw std::runtime_error("unknown dtype '" + name + "' in the manifest");
}

const char* abi_dtype_name(int32_t dtype) {
  switch (dtype) {
    case XPOSCHECK_DTYPE_FP32: return "fp32";
    case XPOSCHECK_DTYPE_BF16: return "bf16";
    case XPOSCHECK_DTYPE_FP16: return "fp16";
    default: return nullptr;
  }
}

void abi_case(const Case& p, int32_t dtype, const std::string& case_id, AbiCase& out) {
  out.case_id = case_id;
  out.key_positions.clear();
  if (p.positions) {
    // The plugin reads M + N entries whatever the vector holds: never hand it fewer.
    if (p.positions->keys.size() != static_cast<std::size_t>(p.key_rows())) {
      throw std::invalid_argument(fmt::format("{} explicit positions for M + N = {} rows",
                                              p.positions->keys.size(), p.key_rows()));
    }
    out.key_positions.assign(p.positions->keys.begin(), p.positions->keys.end());
  }
  xposcheck_case& c = out.view;
  c = xposcheck_case{};
  c.struct_size = sizeof c;
  c.dtype = dtype;
  c.head_dim = p.head_dim;
  c.rotary_dim = p.rotary();
  c.base = p.base;
  c.base_rescale = p.base_rescale;
  c.interpolation = p.interpolation;
  c.xpos = p.xpos ? 1 : 0;
  c.layout = p.layout == Layout::interleaved ? XPOSCHECK_LAYOUT_INTERLEAVED : XPOSCHECK_LAYOUT_HALF;
  c.scale_base = p.scale_base;
  c.seq_len = p.seq_len;
  c.mem_len = p.mem_len;
  c.center = p.centre();
  c.batch = p.batch;
  c.heads = p.heads;
  c.case_id = out.case_id.c_str();
  c.first_position = p.first_key_position();
  c.key_positions = p.positions ? out.key_positions.data() : nullptr;
}

void abi_case(const json& entry, AbiCase& out) {
  abi_case(entry.at("params").get<Case>(), abi_dtype(entry.at("dtype").get<std::string>()),
           entry.value("case_id", ""), out);
}

void encode_input(const Tensor& t, int32_t dtype, AbiBuffer& out) {
  if (t.rank() != 4) throw std::runtime_error("input of rank " + std::to_string(t.rank()) + ", not 4");
  out.bytes.assign(t.size() * dtype_size(dtype), 0);
  for (std::size_t i = 0; i < t.size(); ++i) {
    const float v = static_cast<float>(t.data[i]);
    if (dtype == XPOSCHECK_DTYPE_FP32) {
      std::memcpy(out.bytes.data() + 4 * i, &v, 4);
      continue;
    }
    const uint16_t bits = dtype == XPOSCHECK_DTYPE_BF16 ? xposcheck_float_to_bf16(v) : xposcheck_float_to_fp16(v);
    std::memcpy(out.bytes.data() + 2 * i, &bits, 2);
  }
  out.view = xposcheck_tensor{out.bytes.data(), dtype, 4, {}, out.bytes.size()};
  for (int d = 0; d < 4; ++d) out.view.shape[d] = static_cast<int64_t>(t.shape[d]);
}

void prepare_output(const Shape& shape, int32_t dtype, AbiBuffer& out) {
  out.bytes.assign(element_count(shape) * 4, 0);
  out.view = xposcheck_tensor{out.bytes.data(), dtype, static_cast<int32_t>(shape.size()), {},
                              out.bytes.size()};
  for (std::size_t d = 0; d < shape.size() && d < 4; ++d) out.view.shape[d] = static_cast<int64_t>(shape[d]);
}

Tensor decode_output(const AbiBuffer& buffer, const char* name, NpyStorage& storage) {
  const xposcheck_tensor& v = buffer.view;
  const char* dtype = abi_dtype_name(v.dtype);
  if (!dtype) throw std::runtime_error(fmt::format("{}: unknown dtype code {}", name, v.dtype));
  if (v.rank < 1 || v.rank > 4) throw std::runtime_error(fmt::format("{}: rank {} (1 to 4)", name, v.rank));
  Shape shape;
  for (int d = 0; d < v.rank; ++d) {
    if (v.shape[d] < 0) throw std::runtime_error(fmt::format("{}: negative size {} in dimension {}", name, v.shape[d], d));
    shape.push_back(static_cast<std::size_t>(v.shape[d]));
  }
  const std::size_t need = element_count(shape) * dtype_size(v.dtype);
  if (v.data != buffer.bytes.data() || need > buffer.bytes.size()) {
    throw std::runtime_error(fmt::format("{}: declared {} {} needs {} bytes in the buffer it was given "
                                         "({} bytes)", name, dtype, shape_string(shape), need,
                                         buffer.bytes.size()));
  }
  Tensor t(shape);
  const unsigned char* p = buffer.bytes.data();
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (v.dtype == XPOSCHECK_DTYPE_FP32) {
      float f;
      std::memcpy(&f, p + 4 * i, 4);
      t.data[i] = f;
      continue;
    }
    uint16_t bits;
    std::memcpy(&bits, p + 2 * i, 2);
    t.data[i] = v.dtype == XPOSCHECK_DTYPE_BF16 ? xposcheck_bf16_to_float(bits) : xposcheck_fp16_to_float(bits);
  }
  storage = v.dtype == XPOSCHECK_DTYPE_FP32   ? NpyStorage::f4
            : v.dtype == XPOSCHECK_DTYPE_BF16 ? NpyStorage::bf16_bits
                                              : NpyStorage::f2;
  return t;
}

}  // namespace xposcheck::external
