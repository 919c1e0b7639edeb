#pragma once
// The runner's view of include/xposcheck/candidate.h: loading a library, and moving
// cases and tensors between the protocol's files and the ABI's raw buffers.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "xposcheck/candidate.h"
#include "xposcheck/reference/case.hpp"
#include "xposcheck/reference/npy.hpp"
#include "xposcheck/reference/tensor.hpp"

namespace xposcheck::external {

// The oldest ABI version the runner still calls, and the first with key_positions.
inline constexpr uint32_t kOldestAbiVersion = 1;
inline constexpr uint32_t kPositionsAbiVersion = 2;

struct Plugin {
  void* handle = nullptr;
  uint32_t version = 0;  // what its xposcheck_candidate_abi_version returned
  xposcheck_abi_version_fn abi_version = nullptr;
  xposcheck_describe_fn describe = nullptr;
  xposcheck_run_fn run = nullptr;
  xposcheck_run_backward_fn run_backward = nullptr;  // optional: null without a backward pass
};

// dlopen's the library and checks its symbols and ABI version (kOldestAbiVersion up
// to XPOSCHECK_CANDIDATE_ABI_VERSION); throws std::runtime_error naming the library
// and the problem. xposcheck_run_backward is looked up too, and may be absent.
Plugin load_plugin(const std::string& path);

// Why a plugin of this ABI version cannot take the case, or "" when it can.
std::string unsupported(const xposcheck_case& c, uint32_t version);

// A case with the storage its ABI view points into (the id, the positions): filled
// in place, and not copyable, so that the view's pointers stay valid.
struct AbiCase {
  AbiCase() = default;
  AbiCase(const AbiCase&) = delete;
  AbiCase& operator=(const AbiCase&) = delete;
  std::string case_id;
  std::vector<int64_t> key_positions;  // M + N entries, or none for a contiguous case
  xposcheck_case view{};
};

// The case as the ABI's struct, struct_size our own sizeof. Throws
// std::invalid_argument when explicit positions are not exactly M + N.
void abi_case(const Case& c, int32_t dtype, const std::string& case_id, AbiCase& out);
// The same from a manifest entry; throws on a malformed one.
void abi_case(const nlohmann::json& entry, AbiCase& out);

int32_t abi_dtype(const std::string& name);  // "fp32" -> XPOSCHECK_DTYPE_FP32; throws
const char* abi_dtype_name(int32_t dtype);   // "fp32", "bf16", "fp16" or nullptr

// A tensor with its storage: the ABI view points into `bytes`.
struct AbiBuffer {
  std::vector<unsigned char> bytes;
  xposcheck_tensor view{};
};

// Input values (exact in the dtype) encoded for the ABI.
void encode_input(const Tensor& t, int32_t dtype, AbiBuffer& out);
// Room for an output of this shape in any dtype (fp32 size), zero-filled.
void prepare_output(const Shape& shape, int32_t dtype, AbiBuffer& out);

// What the candidate left in an output buffer, with the storage to write it in.
// Throws std::runtime_error when the declared dtype, rank or shape is invalid or
// needs more bytes than it was given.
Tensor decode_output(const AbiBuffer& buffer, const char* name, NpyStorage& storage);

}  // namespace xposcheck::external
