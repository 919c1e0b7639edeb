#include "external/fast_npy.hpp"

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <optional>
#include <string_view>

#include <fmt/format.h>

#include "xposcheck/candidate.h"

namespace xposcheck::external {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[] = "\x93NUMPY";

const char* descr_of(NpyStorage s) {
  switch (s) {
    case NpyStorage::f4: return "<f4";
    case NpyStorage::f2: return "<f2";
    case NpyStorage::bf16_bits: return "<u2";
    case NpyStorage::f8: return "<f8";
  }
  return "";
}

std::string shape_tuple(const Shape& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += fmt::format("{}{}", i ? ", " : "", shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

// Magic, version 1.0, header length and the dict padded (as NumPy pads it) so that
// the data starts at a multiple of 64 bytes.
std::string preamble(const Shape& shape, NpyStorage s) {
  std::string dict = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
                                 descr_of(s), shape_tuple(shape));
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

// The values encoded, or nothing when one is not exactly representable (write_npy
// then reports it).
std::optional<std::string> encode(const Tensor& t, NpyStorage s) {
  const std::size_t size = s == NpyStorage::f4 ? 4 : 2;
  std::string bytes(t.size() * size, '\0');
  for (std::size_t i = 0; i < t.size(); ++i) {
    const double v = t.data[i];
    const float f = static_cast<float>(v);
    if (static_cast<double>(f) != v && !std::isnan(v)) return std::nullopt;
    if (s == NpyStorage::f4) {
      std::memcpy(&bytes[4 * i], &f, 4);
      continue;
    }
    std::uint16_t bits;
    if (s == NpyStorage::f2) {
      bits = xposcheck_float_to_fp16(f);
      if (xposcheck_fp16_to_float(bits) != f && !std::isnan(v)) return std::nullopt;
    } else {
      const std::uint32_t u = xposcheck_float_to_bits(f);
      if ((u & 0xFFFF) != 0 && !std::isnan(v)) return std::nullopt;
      bits = xposcheck_float_to_bf16(f);
    }
    std::memcpy(&bytes[2 * i], &bits, 2);
  }
  return bytes;
}

std::optional<std::string> read_all(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  if (!in || ec) return std::nullopt;
  std::string bytes(size, '\0');
  if (!in.read(bytes.data(), static_cast<std::streamsize>(size))) return std::nullopt;
  return bytes;
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

std::optional<NpyArray> read_canonical(const std::string& bytes) {
  if (bytes.size() < 10 || bytes.compare(0, 6, kMagic, 6) != 0 || bytes[6] != 1 || bytes[7] != 0)
    return std::nullopt;
  const std::size_t header_len = static_cast<unsigned char>(bytes[8]) |
                                 (static_cast<std::size_t>(static_cast<unsigned char>(bytes[9])) << 8);
  if (bytes.size() < 10 + header_len) return std::nullopt;
  std::string_view header(bytes.data() + 10, header_len);
  while (!header.empty() && (header.back() == ' ' || header.back() == '\n')) header.remove_suffix(1);
  constexpr std::string_view head = "{'descr': '", middle = "', 'fortran_order': False, 'shape': ",
                             tail = ", }";
  if (!header.starts_with(head) || !header.ends_with(tail) || header.size() < head.size() + 3)
    return std::nullopt;
  const std::string descr(header.substr(head.size(), 3));
  header = header.substr(head.size() + 3);
  if (!header.starts_with(middle) || (descr != "<f4" && descr != "<f2" && descr != "<u2"))
    return std::nullopt;
  const auto shape = parse_shape(header.substr(middle.size(), header.size() - middle.size() - tail.size()));
  if (!shape) return std::nullopt;
  const std::size_t size = descr == "<f4" ? 4 : 2, count = element_count(*shape);
  if (bytes.size() - 10 - header_len != count * size) return std::nullopt;
  const char* data = bytes.data() + 10 + header_len;
  Tensor t(*shape);
  for (std::size_t i = 0; i < count; ++i) {
    if (size == 4) {
      float f;
      std::memcpy(&f, data + 4 * i, 4);
      t.data[i] = f;
      continue;
    }
    std::uint16_t bits;
    std::memcpy(&bits, data + 2 * i, 2);
    t.data[i] = descr == "<f2" ? xposcheck_fp16_to_float(bits) : xposcheck_bf16_to_float(bits);
  }
  return NpyArray{std::move(t), descr};
}

}  // namespace

void write_input_npy(const fs::path& file, const Tensor& t, NpyStorage storage) {
  const std::optional<std::string> data =
      storage == NpyStorage::f8 || t.size() != element_count(t.shape) ? std::nullopt : encode(t, storage);
  if (!data) return write_npy(file, t, storage);
  const fs::path tmp = file.parent_path() / fmt::format(".{}.tmp-{}", file.filename().string(), ::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    const std::string head = preamble(t.shape, storage);
    out.write(head.data(), static_cast<std::streamsize>(head.size()));
    out.write(data->data(), static_cast<std::streamsize>(data->size()));
    if (!out) throw NpyError(fmt::format("{}: write failed (disk full?)", file.string()));
  }
  fs::rename(tmp, file);
}

NpyArray read_output_npy(const fs::path& file) {
  if (const auto bytes = read_all(file)) {
    if (auto array = read_canonical(*bytes)) return std::move(*array);
  }
  return read_npy(file, /*u2_is_bf16=*/true);
}

}  // namespace xposcheck::external
