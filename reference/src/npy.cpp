#include "xposcheck/reference/npy.hpp"


#include <bit>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "xposcheck/reference/atomic_file.hpp"
#include "xposcheck/reference/dtype.hpp"
#include "xposcheck/reference/regular_file.hpp"

namespace xposcheck {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicSize = 6;

[[noreturn]] void fail(const std::filesystem::path& file, const std::string& problem) {
  throw NpyError(fmt::format("{}: {}", file.string(), problem));
}

// ---- the header dict ----------------------------------------------------------

// A problem in the header text; read_npy adds the file name.
struct HeaderError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Header {
  std::string descr;
  bool fortran_order = false;
  Shape shape;
};

// The header is a Python dict literal as written by numpy.lib.format, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }. This parses that
// subset of Python: quoted strings, True/False, tuples of integers (the "L" suffix of
// Python 2 included), any whitespace and trailing commas, keys in any order.
class DictParser {
 public:
  explicit DictParser(std::string_view text) : text_(text) {}

  Header parse() {
    Header h;
    bool seen[3] = {false, false, false};
    expect('{');
    while (!peek('}')) {
      const std::string key = string();
      expect(':');
      const int k = key == "descr" ? 0 : key == "fortran_order" ? 1 : key == "shape" ? 2 : -1;
      if (k < 0) error("unexpected key '" + key + "'");
      if (seen[k]) error("duplicate key '" + key + "'");
      seen[k] = true;
      if (k == 0) h.descr = descr();
      if (k == 1) h.fortran_order = boolean();
      if (k == 2) h.shape = tuple();
      if (!peek('}')) expect(',');
    }
    expect('}');
    skip_space();
    if (pos_ != text_.size()) error("text after the closing brace");
    for (int k = 0; k < 3; ++k) {
      if (!seen[k]) error(std::string("missing key '") + kKeys[k] + "'");
    }
    return h;
  }

 private:
  static constexpr const char* kKeys[] = {"descr", "fortran_order", "shape"};

  [[noreturn]] void error(const std::string& what) const {
    throw HeaderError(fmt::format("malformed header: {} at offset {} in \"{}\"", what, pos_,
                                  text_));
  }
  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool peek(char c) {
    skip_space();
    return pos_ < text_.size() && text_[pos_] == c;
  }
  void expect(char c) {
    if (!peek(c)) error(fmt::format("expected '{}'", c));
    ++pos_;
  }
  std::string string() {
    skip_space();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) {
      error("expected a quoted string");
    }
    const char quote = text_[pos_++];
    const std::size_t end = text_.find(quote, pos_);
    if (end == std::string_view::npos) error("unterminated string");
    std::string s(text_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return s;
  }
  std::string descr() {
    // Structured dtypes are a list of fields; name them so the error is clear.
    if (peek('[')) throw HeaderError("unsupported dtype: structured dtypes (a list descr)");
    return string();
  }
  bool boolean() {
    skip_space();
    for (const auto& [word, value] : {std::pair{"True", true}, std::pair{"False", false}}) {
      if (text_.substr(pos_, std::strlen(word)) == word) {
        pos_ += std::strlen(word);
        return value;
      }
    }
    error("expected True or False");
  }
  std::size_t integer() {
    skip_space();
    const std::size_t start = pos_;
    std::size_t v = 0;
    while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
      if (__builtin_mul_overflow(v, 10u, &v) ||
          __builtin_add_overflow(v, std::size_t(text_[pos_] - '0'), &v)) {
        error("dimension too large");
      }
      ++pos_;
    }
    if (pos_ == start) error("expected a non-negative integer");
    if (pos_ < text_.size() && text_[pos_] == 'L') ++pos_;
    return v;
  }
  Shape tuple() {
    Shape shape;
    expect('(');
    while (!peek(')')) {
      shape.push_back(integer());
      if (!peek(')')) expect(',');
    }
    expect(')');
    return shape;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

// kind 'f', 'i', 'u', or 'b' for bf16 bit patterns; 0 when unsupported.
struct Format {
  char kind = 0;
  int size = 0;
  bool big_endian = false;
};

Format parse_descr(const std::string& descr, bool u2_is_bf16) {
  if (descr.size() < 3) return {};
  const char order = descr[0];
  const char kind = descr[1];
  const std::string size_text = descr.substr(2);
  const int size = size_text == "1" ? 1 : size_text == "2" ? 2 : size_text == "4" ? 4
                 : size_text == "8" ? 8 : 0;
  if (size == 0 || (order != '<' && order != '>' && order != '|' && order != '=')) return {};
  if (kind == 'f' && size == 1) return {};
  if (kind != 'f' && kind != 'i' && kind != 'u') return {};
  // '|' and '=' mean "no order" and "native": both little endian on supported hosts
  // unless the host itself is big endian.
  const bool big = order == '>' || (order == '=' && std::endian::native == std::endian::big);
  if (kind == 'u' && size == 2 && u2_is_bf16) return {'b', 2, big};
  return {kind, size, big};
}

// ---- decoding ---------------------------------------------------------------

// Assembles an element's bytes into an integer whatever the host's byte order.
std::uint64_t load_bits(const unsigned char* p, int size, bool big_endian) {
  std::uint64_t bits = 0;
  for (int i = 0; i < size; ++i) {
    const int byte = big_endian ? i : size - 1 - i;
    bits = (bits << 8) | p[byte];
  }
  return bits;
}

double half_to_double(std::uint64_t bits) {
  const double sign = (bits & 0x8000) ? -1.0 : 1.0;
  const int exponent = int(bits >> 10) & 0x1F;
  const double mantissa = double(bits & 0x3FF);
  if (exponent == 0x1F) {
    return mantissa == 0.0 ? sign * HUGE_VAL : std::numeric_limits<double>::quiet_NaN();
  }
  if (exponent == 0) return sign * std::ldexp(mantissa, -24);  // subnormal
  return sign * std::ldexp(1024.0 + mantissa, exponent - 25);
}

// 64-bit integers beyond 2^53 may not survive the trip to double; xposcheck only ever
// compares values exactly, so a rounded one is refused rather than kept.
double integer_to_double(const std::filesystem::path& file, std::uint64_t bits,
                         const Format& f, std::size_t index) {
  if (f.kind == 'u') {
    const double d = double(bits);
    if (f.size == 8 && (d >= 0x1p64 || std::uint64_t(d) != bits)) {
      fail(file, fmt::format("element {} = {} is not exactly representable as a double",
                             index, bits));
    }
    return d;
  }
  const int unused = 64 - 8 * f.size;  // sign-extend from the element's width
  const std::int64_t v = std::int64_t(bits << unused) >> unused;
  const double d = double(v);
  if (f.size == 8 && (d >= 0x1p63 || std::int64_t(d) != v)) {
    fail(file, fmt::format("element {} = {} is not exactly representable as a double",
                           index, v));
  }
  return d;
}

double decode(const std::filesystem::path& file, const unsigned char* p,
              const Format& f, std::size_t index) {
  const std::uint64_t bits = load_bits(p, f.size, f.big_endian);
  if (f.kind == 'f') {
    if (f.size == 2) return half_to_double(bits);
    if (f.size == 4) return std::bit_cast<float>(std::uint32_t(bits));
    return std::bit_cast<double>(bits);
  }
  if (f.kind == 'b') return std::bit_cast<float>(std::uint32_t(bits) << 16);  // bf16
  return integer_to_double(file, bits, f, index);
}

// Data stored in Fortran order: element (i0, ..., ik) sits at sum i_d * stride_d
// with stride_0 = 1. Walks C order with an odometer and gathers.
Values fortran_to_c(const Values& f, const Shape& shape) {
  Values c(f.size());
  if (f.empty()) return c;
  std::vector<std::size_t> stride(shape.size()), index(shape.size(), 0);
  std::size_t s = 1;
  for (std::size_t d = 0; d < shape.size(); ++d) stride[d] = s, s *= shape[d];
  std::size_t offset = 0;
  for (double& out : c) {
    out = f[offset];
    for (std::size_t d = shape.size(); d-- > 0;) {  // last index runs fastest
      offset += stride[d];
      if (++index[d] < shape[d]) break;
      offset -= stride[d] * shape[d];
      index[d] = 0;
    }
  }
  return c;
}

// ---- reading ----------------------------------------------------------------

// A header is a short dict (NumPy writes under 200 bytes); a length field claiming
// more is refused before anything is allocated for it.
constexpr std::size_t kMaxHeader = 64 * 1024;

void read_exactly(RegularFile& in, char* dst, std::size_t n, const char* what) {
  const std::size_t got = in.read(dst, n);
  if (got != n) fail(in.path(), fmt::format("truncated {}: expected {} bytes, got {}", what, n, got));
}

// Reads the magic string, version and header; returns the header text.
std::string read_preamble(RegularFile& in) {
  const std::filesystem::path& file = in.path();
  char magic[kMagicSize + 2];
  read_exactly(in, magic, sizeof magic, "preamble (magic string and version)");
  if (std::memcmp(magic, kMagic, kMagicSize) != 0) {
    fail(file, "not a .npy file (bad magic string)");
  }
  const int major = static_cast<unsigned char>(magic[6]);
  const int minor = static_cast<unsigned char>(magic[7]);
  if (major < 1 || major > 3 || minor != 0) {
    fail(file, fmt::format("unsupported .npy format version {}.{} (reads 1.0, 2.0, 3.0)",
                           major, minor));
  }
  const int length_bytes = major == 1 ? 2 : 4;
  unsigned char len[4] = {};
  read_exactly(in, reinterpret_cast<char*>(len), length_bytes, "header length");
  const std::size_t header_len = load_bits(len, length_bytes, false);
  if (header_len > kMaxHeader) {
    fail(file, fmt::format("header length {} is larger than the {} bytes a header may take",
                           header_len, kMaxHeader));
  }
  std::string header(header_len, '\0');
  read_exactly(in, header.data(), header_len, "header");
  return header;
}

Header parse_header(const std::filesystem::path& file, const std::string& text) {
  try {
    return DictParser(text).parse();
  } catch (const HeaderError& e) {
    fail(file, e.what());
  }
}

// The data bytes the header declares; they must be exactly what the file holds, so
// that nothing is allocated for data the file does not have.
std::size_t checked_data_bytes(const RegularFile& in, std::uint64_t offset, const Header& header,
                               const Format& format, std::size_t& count) {
  const std::filesystem::path& file = in.path();
  std::size_t need = 0;
  try {
    count = element_count(header.shape);
  } catch (const std::overflow_error&) {
    fail(file, "shape " + shape_string(header.shape) + " has too many elements");
  }
  if (__builtin_mul_overflow(count, std::size_t(format.size), &need)) {
    fail(file, "shape " + shape_string(header.shape) + " has too many bytes");
  }
  const std::uint64_t have = in.size() - offset;
  if (have != need) {
    fail(file, fmt::format("{}: shape {} of '{}' needs {} data bytes, the file holds {}",
                           have < need ? "data too short" : "trailing data after the array",
                           shape_string(header.shape), header.descr, need, have));
  }
  return need;
}

NpyArray read_file(const std::filesystem::path& file, bool u2_is_bf16, const Shape* expected) {
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::symlink_status(file, ec))) fail(file, "no such file");
  RegularFile in(file);
  const std::string header_text = read_preamble(in);
  const Header header = parse_header(file, header_text);
  const Format format = parse_descr(header.descr, u2_is_bf16);
  if (format.kind == 0) {
    fail(file, fmt::format("unsupported dtype '{}' (reads f2, f4, f8, i1-i8, u1-u8)",
                           header.descr));
  }
  // A shape other than the expected one is all the caller needs to know: the data,
  // however large the header says it is, is never read.
  if (expected && header.shape != *expected) return NpyArray{Tensor(header.shape, {}), header.descr};
  std::size_t count = 0;
  const std::size_t need = checked_data_bytes(in, in.position(), header, format, count);
  std::vector<unsigned char> raw(need);
  read_exactly(in, reinterpret_cast<char*>(raw.data()), need, "data");
  Values values(count);  // every element decoded below
  for (std::size_t i = 0; i < count; ++i) {
    values[i] = decode(file, raw.data() + i * format.size, format, i);
  }
  if (header.fortran_order) values = fortran_to_c(values, header.shape);
  return NpyArray{Tensor(header.shape, std::move(values)), header.descr};
}

}  // namespace

NpyArray read_npy(const std::filesystem::path& file, bool u2_is_bf16, const Shape* expected) {
  try {
    return read_file(file, u2_is_bf16, expected);
  } catch (const FileKindError& e) {
    throw NpyError(e.what());
  }
}

// ---- writing ----------------------------------------------------------------

namespace {

const char* storage_descr(NpyStorage s) {
  switch (s) {
    case NpyStorage::f8: return "<f8";
    case NpyStorage::f4: return "<f4";
    case NpyStorage::f2: return "<f2";
    case NpyStorage::bf16_bits: return "<u2";
  }
  return "?";
}

int storage_size(NpyStorage s) {
  return s == NpyStorage::f8 ? 8 : s == NpyStorage::f4 ? 4 : 2;
}

std::uint64_t double_to_half_bits(double v) {
  const std::uint64_t sign = std::signbit(v) ? 0x8000 : 0;
  const double a = std::fabs(v);
  if (std::isnan(v)) return 0x7E00;
  if (std::isinf(v)) return sign | 0x7C00;
  if (a < 0x1p-14) return sign | std::uint64_t(std::ldexp(a, 24));  // subnormal or zero
  int e = 0;
  const double m = std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
  return sign | (std::uint64_t(e + 14) << 10) | (std::uint64_t(std::ldexp(m, 11)) & 0x3FF);
}

// The bits of value v in storage s; v must be representable there (checked by caller).
std::uint64_t encode(double v, NpyStorage s) {
  switch (s) {
    case NpyStorage::f8: return std::bit_cast<std::uint64_t>(v);
    case NpyStorage::f4: return std::bit_cast<std::uint32_t>(float(v));
    case NpyStorage::f2: return double_to_half_bits(v);
    case NpyStorage::bf16_bits: return std::bit_cast<std::uint32_t>(float(v)) >> 16;
  }
  return 0;
}

bool representable(double v, NpyStorage s) {
  if (std::isnan(v) || s == NpyStorage::f8) return true;
  const DType t = s == NpyStorage::f4 ? DType::fp32
                  : s == NpyStorage::f2 ? DType::fp16 : DType::bf16;
  return round_to(t, v) == v;
}

std::string shape_tuple(const Shape& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += fmt::format("{}, ", shape[i]);
  if (shape.size() > 1) s.resize(s.size() - 2);
  else if (shape.size() == 1) s.pop_back();  // "(3,)" as Python writes a 1-tuple
  return s + ")";
}

// Magic, version, header length and the padded header dict: NumPy pads with spaces
// and a newline so that the data starts at a multiple of 64 bytes.
std::string npy_preamble(const Shape& shape, NpyStorage storage) {
  std::string dict = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
                                 storage_descr(storage), shape_tuple(shape));
  const bool v1 = dict.size() + 1 + kMagicSize + 4 <= 65535;
  const std::size_t fixed = kMagicSize + 2 + (v1 ? 2 : 4);
  const std::size_t padded = (fixed + dict.size() + 1 + 63) / 64 * 64;
  dict.append(padded - fixed - dict.size() - 1, ' ');
  dict += '\n';
  std::string out(kMagic, kMagicSize);
  out += char(v1 ? 1 : 2);
  out += char(0);
  for (std::size_t i = 0; i < (v1 ? 2u : 4u); ++i) out += char((dict.size() >> (8 * i)) & 0xFF);
  return out + dict;
}

void write_bytes(std::ostream& out, const std::string& preamble, const Tensor& t,
                 NpyStorage storage) {
  out.write(preamble.data(), std::streamsize(preamble.size()));
  const int size = storage_size(storage);
  std::vector<char> buffer;
  buffer.reserve(std::size_t(size) * 4096);
  for (std::size_t i = 0; i < t.data.size(); ++i) {
    const std::uint64_t bits = encode(t.data[i], storage);
    for (int b = 0; b < size; ++b) buffer.push_back(char((bits >> (8 * b)) & 0xFF));
    if (buffer.size() >= std::size_t(size) * 4096 || i + 1 == t.data.size()) {
      out.write(buffer.data(), std::streamsize(buffer.size()));
      buffer.clear();
    }
  }
}

}  // namespace

NpyWriter::NpyWriter(const std::filesystem::path& file, const Shape& shape) try
    : file_(file), count_(element_count(shape)) {
  const std::string preamble = npy_preamble(shape, NpyStorage::f8);
  header_ = preamble.size();
  file_.write_at(0, preamble.data(), preamble.size());
} catch (const FileWriteError& e) {
  throw NpyError(e.what());
}

void NpyWriter::write(std::size_t first, const double* values, std::size_t n) {
  if (first > count_ || n > count_ - first) {
    fail(file_.path(), fmt::format("elements {}..{} outside the array's {}", first, first + n, count_));
  }
  try {
    const std::uint64_t at = header_ + 8 * std::uint64_t(first);
    if constexpr (std::endian::native == std::endian::little) {
      file_.write_at(at, values, n * sizeof(double));
    } else {
      std::vector<char> bytes(n * 8);
      for (std::size_t i = 0; i < n; ++i) {
        const std::uint64_t bits = encode(values[i], NpyStorage::f8);
        for (int b = 0; b < 8; ++b) bytes[i * 8 + b] = char((bits >> (8 * b)) & 0xFF);
      }
      file_.write_at(at, bytes.data(), bytes.size());
    }
  } catch (const FileWriteError& e) {
    throw NpyError(e.what());
  }
  written_ += n;
}

void NpyWriter::commit() {
  if (written_ != count_) {
    fail(file_.path(), fmt::format("{} of {} elements written", written_, count_));
  }
  try {
    file_.commit();
  } catch (const FileWriteError& e) {
    throw NpyError(e.what());
  }
}

void write_npy(const std::filesystem::path& file, const Tensor& t, NpyStorage storage) {
  if (t.data.size() != element_count(t.shape)) {
    fail(file, fmt::format("tensor holds {} values but its shape {} needs {}",
                           t.data.size(), shape_string(t.shape), element_count(t.shape)));
  }
  for (std::size_t i = 0; i < t.data.size(); ++i) {
    if (!representable(t.data[i], storage)) {
      fail(file, fmt::format("element {} = {} is not exactly representable as '{}'", i,
                             t.data[i], storage_descr(storage)));
    }
  }
  try {
    write_atomically(file, [&](std::ostream& out) {
      write_bytes(out, npy_preamble(t.shape, storage), t, storage);
    });
  } catch (const FileWriteError& e) {
    throw NpyError(e.what());
  }
}

}  // namespace xposcheck
