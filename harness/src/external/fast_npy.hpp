#pragma once
// The protocol's bulk .npy traffic (inputs out, outputs back) on a fast path: the
// default grid moves about a billion elements each way, and the general reader and
// writer (reference/npy.hpp) spend ~30 ns on each. The fast path handles only the
// canonical files NumPy and xposcheck write (little-endian, C order, '<f4', '<f2',
// '<u2'); everything else, and every error, goes through read_npy / write_npy, so the
// checks and messages are theirs.
#include <filesystem>

#include "xposcheck/reference/npy.hpp"

namespace xposcheck::external {

// Same file as write_npy(file, t, storage) would write, atomically.
void write_input_npy(const std::filesystem::path& file, const Tensor& t, NpyStorage storage);

// Same result as read_npy(file, /*u2_is_bf16=*/true, expected).
NpyArray read_output_npy(const std::filesystem::path& file, const Shape* expected = nullptr);

}  // namespace xposcheck::external
