#pragma once
// NumPy .npy files (format versions 1.0-3.0), the exchange format of xposcheck.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "xposcheck/reference/atomic_file.hpp"
#include "xposcheck/reference/tensor.hpp"

namespace xposcheck {

// Thrown for an unreadable, truncated or unsupported file; the message names the file.
struct NpyError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// How values are stored on disk. bf16 has no NumPy dtype: it travels as uint16 bit
// patterns ("<u2"), or as float32 holding exactly representable values.
enum class NpyStorage { f8, f4, f2, bf16_bits };

struct NpyArray {
  Tensor tensor;         // values converted exactly to double
  std::string descr;     // the file's dtype descriptor, e.g. "<f4"
};

// Reads little- or big-endian f2/f4/f8, i1..i8, u1..u8 (u2 as plain integers unless
// bf16_bits is asked for) in C order; Fortran order is accepted and transposed.
// The data must be exactly as long as the shape says: bytes after the array are
// reported, unlike NumPy, because they usually mean a writer put a wrong shape in
// the header. 64-bit integers that a double cannot hold exactly are refused.
// Files written by candidates are untrusted: only a regular file is read (never a
// FIFO or a symbolic link), a header over 64 KiB is refused, and nothing is allocated
// for data the file does not hold. With `expected`, a file whose header declares
// another shape comes back with that shape and no data, none of it read.
NpyArray read_npy(const std::filesystem::path& file, bool u2_is_bf16 = false,
                  const Shape* expected = nullptr);

// Writes C order, little endian; the file appears atomically (temporary + rename).
// Values must be representable in the storage type (bf16_bits: bf16 values).
void write_npy(const std::filesystem::path& file, const Tensor& t,
               NpyStorage storage = NpyStorage::f8);

// A float64 .npy file written in pieces, for arrays too large to hold at once: the same
// bytes write_npy writes for the same shape and values, its elements given in any order
// (C-order indices), appearing atomically at commit(). commit() refuses a file with
// elements never written. Errors are NpyError naming the file.
class NpyWriter {
 public:
  NpyWriter(const std::filesystem::path& file, const Shape& shape);
  // Elements first..first+n-1 (C order).
  void write(std::size_t first, const double* values, std::size_t n);
  void commit();

 private:
  AtomicFile file_;
  std::size_t header_ = 0, count_ = 0, written_ = 0;
};

}  // namespace xposcheck
