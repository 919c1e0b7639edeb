#pragma once
// A long case's .npy files a block of rows at a time (docs/long-context.md): inputs
// written from their rows as they are drawn, outputs read back by rows, so that no
// whole tensor is ever in the harness's memory. The files are the ones the protocol
// always uses (docs/protocol.md): a candidate cannot tell the difference.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "external/fast_npy.hpp"
#include "xposcheck/harness/candidate.hpp"

namespace xposcheck::external {

// The file write_input_npy writes for the tensor of `shape` ([batch, heads, rows, D])
// whose rows `rows` gives (the query tensor or the key tensor), block_rows at a time.
// Throws NpyError naming the file.
void write_input_npy_rows(const std::filesystem::path& file, const Shape& shape, NpyStorage storage,
                          const InputRows& rows, bool query, long block_rows);

// An output file whose header is read now and whose values are read by rows (pread:
// a file cut short or rewritten under the reader is an error message, never a crash).
class NpyRowReader {
 public:
  // The header of any .npy file (NpyError naming the file when it is not one, or when a
  // canonical file's size does not match its shape); only a canonical one (C order,
  // little-endian '<f4', '<f2' or '<u2') can be read by rows.
  explicit NpyRowReader(const std::filesystem::path& file);
  const CanonicalNpy& header() const { return header_; }
  // Rows first..first+count-1 of every [batch, head] slice, [batch * heads][count][D].
  std::optional<std::string> read(long first, long count, double* out) const;
  // A float32 file's first value (index, value) that bf16 cannot hold, reading it
  // through a chunk at a time; none for other files.
  std::optional<std::pair<std::size_t, double>> first_inexact_bf16() const;

 private:
  std::unique_ptr<RegularFile> file_;
  CanonicalNpy header_;
  std::uint64_t data_offset_ = 0;
  std::size_t elements_ = 0;
  bool canonical_ = true;
};

// A case's q_out and k_out files as CandidateOutput::rows: the output with the shapes
// and dtypes the headers say, its values left in the files. Throws NpyError.
CandidateOutput output_from_files(const std::filesystem::path& q_out, const std::filesystem::path& k_out,
                                  DType want);

}  // namespace xposcheck::external
