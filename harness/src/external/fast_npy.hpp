#pragma once
// The protocol's bulk .npy traffic (inputs out, outputs back) on a fast path: the
// default grid moves about a billion elements each way, and the general reader and
// writer (reference/npy.hpp) spend ~30 ns on each. The fast path handles only the
// canonical files NumPy and xposcheck write (little-endian, C order, '<f4', '<f2',
// '<u2'); everything else, and every error, goes through read_npy / write_npy, so the
// checks and messages are theirs.
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "xposcheck/reference/dtype.hpp"
#include "xposcheck/reference/npy.hpp"
#include "xposcheck/reference/regular_file.hpp"

namespace xposcheck::external {

// Same file as write_npy(file, t, storage) would write, atomically.
void write_input_npy(const std::filesystem::path& file, const Tensor& t, NpyStorage storage);

// Same result as read_npy(file, /*u2_is_bf16=*/true, expected).
NpyArray read_output_npy(const std::filesystem::path& file, const Shape* expected = nullptr);

// The dtype an output file's descr holds, as the comparison names dtypes ("fp32",
// "bf16", "fp16"; "<f4" is "bf16" when bf16 is wanted, float32 encoding bf16 values,
// which the caller checks), or a description of what it holds instead ("float64").
std::string npy_dtype_name(const std::string& descr, DType want);
// Whether a bf16 file could hold v exactly (NaN stays NaN).
bool holds_bf16(double v);
// The name of a float32 file of a bf16 case holding a value bf16 cannot (its first).
std::string inexact_bf16_name(std::size_t element, double value);

// The pieces of the fast path, for files written and read a block of rows at a time
// (npy_rows.hpp).
const char* npy_descr(NpyStorage s);                // "<f4", "<f2", "<u2"
std::size_t npy_element_size(std::string_view descr);  // of "<f4", "<f2" or "<u2"
// Magic, version 1.0, header length and the dict padded (as NumPy pads it) so that
// the data starts at a multiple of 64 bytes.
std::string npy_preamble(const Shape& shape, NpyStorage s);
// Encodes src[0, n) into dst; false when a value is not exactly representable. The
// exactness test accumulates bit differences rather than branching, so that the
// compiler can vectorise the loops.
bool npy_encode(const double* src, std::size_t n, NpyStorage s, char* dst);
void npy_decode(const char* src, std::size_t n, std::string_view descr, double* dst);
struct CanonicalNpy {
  std::string descr;  // "<f4", "<f2" or "<u2"
  Shape shape;
};
// The preamble and header of a canonical file (little-endian, C order, '<f4', '<f2' or
// '<u2'), read from `in`, which is left at the data; nothing when the file is not one.
std::optional<CanonicalNpy> read_canonical_header(RegularFile& in);
// The elements of a canonical file whose data takes data_bytes: nothing when the shape
// overflows or does not take exactly that many bytes.
std::optional<std::size_t> canonical_elements(const CanonicalNpy& header, std::uint64_t data_bytes);

}  // namespace xposcheck::external
