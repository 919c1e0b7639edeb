#include "external/fast_npy.hpp"

#include <immintrin.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "xposcheck/candidate.h"
#include "xposcheck/reference/atomic_file.hpp"
#include "xposcheck/reference/regular_file.hpp"

namespace xposcheck::external {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[] = "\x93NUMPY";
// Elements converted per step: the data streams through one small buffer, because
// fresh multi-megabyte buffers cost more in page faults than the conversion itself.
constexpr std::size_t kChunk = 1 << 16;

}  // namespace

const char* npy_descr(NpyStorage s) {
  switch (s) {
    case NpyStorage::f4: return "<f4";
    case NpyStorage::f2: return "<f2";
    case NpyStorage::bf16_bits: return "<u2";
    case NpyStorage::f8: return "<f8";
  }
  return "";
}

std::size_t npy_element_size(std::string_view descr) { return descr == "<f4" ? 4 : 2; }

namespace {

std::string shape_tuple(const Shape& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += fmt::format("{}{}", i ? ", " : "", shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

}  // namespace

std::string npy_preamble(const Shape& shape, NpyStorage s) {
  std::string dict = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
                                 npy_descr(s), shape_tuple(shape));
  const std::size_t fixed = 10, padded = (fixed + dict.size() + 1 + 63) / 64 * 64;
  dict.append(padded - fixed - dict.size() - 1, ' ');
  dict += '\n';
  std::string out(kMagic, 6);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(dict.size() & 0xFF);
  out += static_cast<char>(dict.size() >> 8);
  return out + dict;
}

// The bits that differ between v and its float32 rounding: 0 when float holds v.
static inline std::uint64_t float_loss(double v, float f) {
  std::uint64_t a, b;
  const double back = f;
  std::memcpy(&a, &v, 8);
  std::memcpy(&b, &back, 8);
  return a ^ b;
}

namespace {

// Each storage's loop on its own, compiled for AVX2 too where the processor has it.
[[gnu::target_clones("arch=x86-64-v3", "default")]] std::uint64_t encode_f4(const double* src, std::size_t n,
                                                                           float* out) {
  std::uint64_t lost = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const float f = static_cast<float>(src[i]);
    lost |= float_loss(src[i], f);
    out[i] = f;
  }
  return lost;
}

[[gnu::target_clones("arch=x86-64-v3", "default")]] std::uint64_t encode_bf16(const double* src, std::size_t n,
                                                                             std::uint16_t* out) {
  std::uint64_t lost = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const float f = static_cast<float>(src[i]);
    const std::uint32_t u = xposcheck_float_to_bits(f);
    lost |= float_loss(src[i], f) | (u & 0xFFFFu);
    out[i] = static_cast<std::uint16_t>(u >> 16);
  }
  return lost;
}

std::uint64_t encode_f2_scalar(const double* src, std::size_t n, std::uint16_t* out) {
  std::uint64_t lost = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const float f = static_cast<float>(src[i]);
    out[i] = xposcheck_float_to_fp16(f);
    lost |= float_loss(src[i], f) | (xposcheck_float_to_bits(xposcheck_fp16_to_float(out[i])) ^
                                     xposcheck_float_to_bits(f));
  }
  return lost;
}

void decode_f2_scalar(const char* src, std::size_t n, double* dst) {
  for (std::size_t i = 0; i < n; ++i) {
    std::uint16_t bits;
    std::memcpy(&bits, src + 2 * i, 2);
    dst[i] = xposcheck_fp16_to_float(bits);
  }
}

// fp16 by the processor's F16C conversions, eight elements a step: IEEE conversions
// rounding to nearest even, so the same bits as xposcheck_float_to_fp16 and
// xposcheck_fp16_to_float, without their branches (which kept fp16 files at a few
// times the cost of the others).
[[gnu::target("avx2,f16c")]] std::uint64_t encode_f2_f16c(const double* src, std::size_t n, std::uint16_t* out) {
  __m256i lost = _mm256_setzero_si256();
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256d lo = _mm256_loadu_pd(src + i), hi = _mm256_loadu_pd(src + i + 4);
    const __m128 flo = _mm256_cvtpd_ps(lo), fhi = _mm256_cvtpd_ps(hi);
    const __m256 f = _mm256_set_m128(fhi, flo);
    const __m128i h = _mm256_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), h);
    const __m256i back = _mm256_castps_si256(_mm256_cvtph_ps(h));
    lost = _mm256_or_si256(lost, _mm256_xor_si256(back, _mm256_castps_si256(f)));
    lost = _mm256_or_si256(lost, _mm256_xor_si256(_mm256_castpd_si256(_mm256_cvtps_pd(flo)), _mm256_castpd_si256(lo)));
    lost = _mm256_or_si256(lost, _mm256_xor_si256(_mm256_castpd_si256(_mm256_cvtps_pd(fhi)), _mm256_castpd_si256(hi)));
  }
  alignas(32) std::uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), lost);
  return (lanes[0] | lanes[1] | lanes[2] | lanes[3]) | encode_f2_scalar(src + i, n - i, out + i);
}

[[gnu::target("avx2,f16c")]] void decode_f2_f16c(const char* src, std::size_t n, double* dst) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 f = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i)));
    _mm256_storeu_pd(dst + i, _mm256_cvtps_pd(_mm256_castps256_ps128(f)));
    _mm256_storeu_pd(dst + i + 4, _mm256_cvtps_pd(_mm256_extractf128_ps(f, 1)));
  }
  decode_f2_scalar(src + 2 * i, n - i, dst + i);
}

bool has_f16c() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
  return yes;
}

[[gnu::target_clones("arch=x86-64-v3", "default")]] void decode_f4(const char* src, std::size_t n, double* dst) {
  for (std::size_t i = 0; i < n; ++i) {
    float f;
    std::memcpy(&f, src + 4 * i, 4);
    dst[i] = f;
  }
}

[[gnu::target_clones("arch=x86-64-v3", "default")]] void decode_bf16(const char* src, std::size_t n, double* dst) {
  for (std::size_t i = 0; i < n; ++i) {
    std::uint16_t bits;
    std::memcpy(&bits, src + 2 * i, 2);
    dst[i] = xposcheck_bf16_to_float(bits);
  }
}

}  // namespace

bool npy_encode(const double* src, std::size_t n, NpyStorage s, char* dst) {
  switch (s) {
    case NpyStorage::f4: return encode_f4(src, n, reinterpret_cast<float*>(dst)) == 0;
    case NpyStorage::bf16_bits: return encode_bf16(src, n, reinterpret_cast<std::uint16_t*>(dst)) == 0;
    case NpyStorage::f2: {
      auto* out = reinterpret_cast<std::uint16_t*>(dst);
      return (has_f16c() ? encode_f2_f16c(src, n, out) : encode_f2_scalar(src, n, out)) == 0;
    }
    case NpyStorage::f8: break;
  }
  return false;
}

void npy_decode(const char* src, std::size_t n, std::string_view descr, double* dst) {
  if (descr == "<f4") return decode_f4(src, n, dst);
  if (descr == "<f2") return has_f16c() ? decode_f2_f16c(src, n, dst) : decode_f2_scalar(src, n, dst);
  decode_bf16(src, n, dst);
}

namespace {

// Thrown inside the writer to abandon a streamed file (write_atomically removes it).
struct NotExact {};

// Writes the file in chunks; false (and no file) when a value needs write_npy.
bool write_streamed(const fs::path& file, const Tensor& t, NpyStorage storage) {
  // No larger than the tensor: a decode step's inputs are a few hundred bytes.
  std::vector<char> buffer(std::min(kChunk, t.size()) * 4);
  try {
    write_atomically(file, [&](std::ostream& out) {
      const std::string head = npy_preamble(t.shape, storage);
      out.write(head.data(), static_cast<std::streamsize>(head.size()));
      const std::size_t size = npy_element_size(npy_descr(storage));
      for (std::size_t begin = 0; begin < t.size(); begin += kChunk) {
        const std::size_t n = std::min(kChunk, t.size() - begin);
        if (!npy_encode(t.data.data() + begin, n, storage, buffer.data())) throw NotExact{};
        out.write(buffer.data(), static_cast<std::streamsize>(n * size));
      }
    });
  } catch (const NotExact&) {
    return false;
  } catch (const FileWriteError& e) {
    throw NpyError(e.what());
  }
  return true;
}

// "(1, 1, 7, 16)" -> shape; nothing unless it is exactly NumPy's spelling.
std::optional<Shape> parse_shape(std::string_view text) {
  if (text.size() < 2 || text.front() != '(' || text.back() != ')') return std::nullopt;
  Shape shape;
  std::string_view rest = text.substr(1, text.size() - 2);
  while (!rest.empty()) {
    std::size_t n = 0, digits = 0;
    while (digits < rest.size() && std::isdigit(static_cast<unsigned char>(rest[digits])))
      n = n * 10 + static_cast<std::size_t>(rest[digits++] - '0');
    if (digits == 0 || digits > 15) return std::nullopt;
    shape.push_back(n);
    rest.remove_prefix(digits);
    if (rest.starts_with(", ")) rest.remove_prefix(2);
    else if (rest == ",") rest = {};
    else if (!rest.empty()) return std::nullopt;
  }
  return shape;
}

// The header of a canonical file, if this is one: "{'descr': '<f4', 'fortran_order':
// False, 'shape': (1, 1, 7, 16), }" padded with spaces and a newline.
std::optional<CanonicalNpy> parse_header(std::string_view header) {
  while (!header.empty() && (header.back() == ' ' || header.back() == '\n')) header.remove_suffix(1);
  constexpr std::string_view head = "{'descr': '", middle = "', 'fortran_order': False, 'shape': ",
                             tail = ", }";
  if (!header.starts_with(head) || !header.ends_with(tail) || header.size() < head.size() + 3)
    return std::nullopt;
  CanonicalNpy c{std::string(header.substr(head.size(), 3)), {}};
  header = header.substr(head.size() + 3);
  if (!header.starts_with(middle) || (c.descr != "<f4" && c.descr != "<f2" && c.descr != "<u2"))
    return std::nullopt;
  const auto shape = parse_shape(header.substr(middle.size(), header.size() - middle.size() - tail.size()));
  if (!shape) return std::nullopt;
  c.shape = *shape;
  return c;
}

}  // namespace

std::optional<CanonicalNpy> read_canonical_header(RegularFile& in) {
  char preamble[10];
  if (in.size() < 10 || in.read(preamble, 10) != 10 || std::memcmp(preamble, kMagic, 6) != 0 ||
      preamble[6] != 1 || preamble[7] != 0)
    return std::nullopt;
  const std::size_t header_len = static_cast<unsigned char>(preamble[8]) |
                                 (static_cast<std::size_t>(static_cast<unsigned char>(preamble[9])) << 8);
  if (in.size() < 10 + header_len) return std::nullopt;
  std::string header(header_len, '\0');
  if (in.read(header.data(), header_len) != header_len) return std::nullopt;
  return parse_header(header);
}

namespace {

std::optional<NpyArray> read_canonical(const fs::path& file, const Shape* expected) {
  RegularFile in(file);
  const std::optional<CanonicalNpy> c = read_canonical_header(in);
  if (!c) return std::nullopt;
  // Another shape is reported from the header alone: a sparse file claiming billions
  // of elements costs nothing.
  if (expected && c->shape != *expected) return NpyArray{Tensor(c->shape, {}), c->descr};
  const std::size_t element = npy_element_size(c->descr);
  const std::optional<std::size_t> elements = canonical_elements(*c, in.size() - in.position());
  if (!elements) return std::nullopt;  // read_npy reports it
  const std::size_t count = *elements;
  Values values(count);  // every element decoded below
  std::vector<char> buffer(kChunk * element);
  for (std::size_t begin = 0; begin < count; begin += kChunk) {
    const std::size_t n = std::min(kChunk, count - begin);
    if (in.read(buffer.data(), n * element) != n * element) return std::nullopt;
    npy_decode(buffer.data(), n, c->descr, values.data() + begin);
  }
  return NpyArray{Tensor(c->shape, std::move(values)), c->descr};
}

}  // namespace

std::string npy_dtype_name(const std::string& descr, DType want) {
  const char kind = descr.size() > 1 ? descr[1] : '?';
  const int bits = descr.size() > 2 ? 8 * std::atoi(descr.c_str() + 2) : 0;
  if (kind == 'u' && bits == 16) return "bf16";  // the bit-pattern encoding
  if (kind == 'f' && bits == 16) return "fp16";
  if (kind == 'f' && bits == 32) return want == DType::bf16 ? "bf16" : "fp32";
  if (kind == 'f') return fmt::format("float{}", bits);
  if (kind == 'i') return fmt::format("int{}", bits);
  if (kind == 'u') return fmt::format("uint{}", bits);
  return descr;
}

std::optional<std::size_t> canonical_elements(const CanonicalNpy& header, std::uint64_t data_bytes) {
  std::size_t count = 1, bytes = 0;
  for (std::size_t d : header.shape) {
    if (__builtin_mul_overflow(count, d, &count)) return std::nullopt;
  }
  if (__builtin_mul_overflow(count, npy_element_size(header.descr), &bytes) || bytes != data_bytes) return std::nullopt;
  return count;
}

bool holds_bf16(double v) { return std::isnan(v) || round_to(DType::bf16, v) == v; }

std::string inexact_bf16_name(std::size_t element, double value) {
  return fmt::format("fp32 (float32 values that bf16 cannot hold, e.g. element {} = {})", element, value);
}

void write_input_npy(const fs::path& file, const Tensor& t, NpyStorage storage) {
  const bool streamable = storage != NpyStorage::f8 && t.size() == element_count(t.shape);
  if (!streamable || !write_streamed(file, t, storage)) write_npy(file, t, storage);
}

NpyArray read_output_npy(const fs::path& file, const Shape* expected) {
  try {
    if (auto array = read_canonical(file, expected)) return std::move(*array);
  } catch (const FileKindError& e) {
    throw NpyError(e.what());
  }
  return read_npy(file, /*u2_is_bf16=*/true, expected);
}

}  // namespace xposcheck::external
