#include "external/npy_rows.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "xposcheck/harness/candidate_text.hpp"
#include "xposcheck/reference/atomic_file.hpp"

namespace xposcheck::external {
namespace {

// The [batch * heads] slices of a rank-4 shape and the values of one row.
struct RowLayout {
  std::size_t slices, rows, width;
  explicit RowLayout(const Shape& s) : slices(s[0] * s[1]), rows(s[2]), width(s[3]) {}
  std::uint64_t row_offset(std::size_t slice, std::size_t row) const { return (slice * rows + row) * width; }
};

// The same outputs read a block of rows at a time: the headers said what they hold.
class FileRows : public OutputRows {
 public:
  FileRows(const std::filesystem::path& q, const std::filesystem::path& k) : q_(q), k_(k) {}
  std::optional<std::string> read(bool query, long first, long count, double* out) const override {
    return (query ? q_ : k_).read(first, count, out);
  }
  const NpyRowReader& q() const { return q_; }
  const NpyRowReader& k() const { return k_; }

 private:
  NpyRowReader q_, k_;
};

// The dtype the file holds, as the whole file's reader names it: a float32 file of a
// bf16 case is read through once, a chunk at a time, for a value bf16 cannot hold.
std::string file_dtype(const NpyRowReader& file, DType want) {
  const auto bad = want == DType::bf16 ? file.first_inexact_bf16() : std::nullopt;
  return bad ? inexact_bf16_name(bad->first, bad->second) : npy_dtype_name(file.header().descr, want);
}

}  // namespace

void write_input_npy_rows(const std::filesystem::path& file, const Shape& shape, NpyStorage storage,
                          const InputRows& rows, bool query, long block_rows) {
  const RowLayout layout(shape);
  const std::string head = npy_preamble(shape, storage);
  const std::size_t size = npy_element_size(npy_descr(storage));
  const auto step = static_cast<std::size_t>(std::max(1L, block_rows));
  std::vector<double> values;
  std::vector<char> bytes;
  try {
    AtomicFile out(file);
    out.write_at(0, head.data(), head.size());
    for (std::size_t first = 0; first < layout.rows; first += step) {
      const std::size_t count = std::min(step, layout.rows - first);
      const std::size_t slice = count * layout.width;
      values.resize(layout.slices * slice);
      bytes.resize(slice * size);
      rows(query, static_cast<long>(first), static_cast<long>(count), values.data());
      for (std::size_t l = 0; l < layout.slices; ++l) {
        if (!npy_encode(values.data() + l * slice, slice, storage, bytes.data()))
          throw NpyError(file.string() + ": an input value the file's dtype cannot hold");
        out.write_at(head.size() + layout.row_offset(l, first) * size, bytes.data(), bytes.size());
      }
    }
    out.commit();
  } catch (const FileWriteError& e) {
    throw NpyError(e.what());
  }
}

NpyRowReader::NpyRowReader(const std::filesystem::path& file) {
  try {
    file_ = std::make_unique<RegularFile>(file);
  } catch (const FileKindError& e) {
    throw NpyError(e.what());
  }
  const auto header = read_canonical_header(*file_);
  if (!header) {
    // Another dtype or order: its header alone (none of the data read) says what it
    // holds, so that a wrong dtype or shape is reported as such.
    const Shape none{0, 0, 0, 0, 0};
    NpyArray foreign = read_npy(file, /*u2_is_bf16=*/true, &none);
    header_ = CanonicalNpy{foreign.descr, foreign.tensor.shape};
    canonical_ = false;
    return;
  }
  header_ = *header;
  data_offset_ = file_->position();
  const std::optional<std::size_t> elements = canonical_elements(header_, file_->size() - data_offset_);
  if (!elements)
    throw NpyError(fmt::format("{}: {} bytes of data for shape {}", file.string(), file_->size() - data_offset_,
                               shape_string(header_.shape)));
  elements_ = *elements;
}

std::optional<std::string> NpyRowReader::read(long first, long count, double* out) const {
  if (!canonical_)
    return file_->path().string() + ": a long case's outputs are read by rows, so they must be C-order, " +
           "little-endian .npy files of '<f4', '<f2' or '<u2' (bf16 bits), as numpy.save writes a contiguous " +
           "array; this one holds '" + header_.descr + "' (or Fortran order)";
  if (header_.shape.size() != 4) return file_->path().string() + ": not a [batch, heads, rows, D] tensor";
  const RowLayout layout(header_.shape);
  const std::size_t size = npy_element_size(header_.descr);
  const std::size_t slice = static_cast<std::size_t>(count) * layout.width;
  std::vector<char> bytes(slice * size);
  for (std::size_t l = 0; l < layout.slices; ++l) {
    const std::uint64_t at = data_offset_ + layout.row_offset(l, static_cast<std::size_t>(first)) * size;
    if (file_->read_at(at, bytes.data(), bytes.size()) != bytes.size())
      return file_->path().string() + ": cut short while it was read";
    npy_decode(bytes.data(), slice, header_.descr, out + l * slice);
  }
  return std::nullopt;
}

std::optional<std::pair<std::size_t, double>> NpyRowReader::first_inexact_bf16() const {
  if (!canonical_ || header_.descr != "<f4") return std::nullopt;
  constexpr std::size_t kChunk = 1 << 18;
  const std::size_t total = elements_;
  std::vector<char> bytes(kChunk * 4);
  std::vector<double> values(kChunk);
  for (std::size_t begin = 0; begin < total; begin += kChunk) {
    const std::size_t n = std::min(kChunk, total - begin);
    if (file_->read_at(data_offset_ + begin * 4, bytes.data(), n * 4) != n * 4) return std::nullopt;  // read() says
    npy_decode(bytes.data(), n, header_.descr, values.data());
    for (std::size_t i = 0; i < n; ++i) {
      if (!holds_bf16(values[i])) return std::pair{begin + i, values[i]};
    }
  }
  return std::nullopt;
}

CandidateOutput output_from_files(const std::filesystem::path& q_out, const std::filesystem::path& k_out,
                                  DType want) {
  auto rows = std::make_shared<FileRows>(q_out, k_out);
  CandidateOutput out;
  out.q_out.shape = rows->q().header().shape;
  out.k_out.shape = rows->k().header().shape;
  out.q_dtype = candidate_text(file_dtype(rows->q(), want));
  out.k_dtype = candidate_text(file_dtype(rows->k(), want));
  out.rows = std::move(rows);
  return out;
}

}  // namespace xposcheck::external
