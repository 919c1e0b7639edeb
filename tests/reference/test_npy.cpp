#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "temp_dir.hpp"

#include "xposcheck/reference/npy.hpp"

using namespace xposcheck;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

using xposcheck::testing::TempDir;

namespace {


// A .npy file built byte by byte: preamble for format version `major`, the header
// text as given (no padding added) and raw data bytes.
std::string npy_bytes(int major, const std::string& header, const std::string& data) {
  std::string out("\x93NUMPY", 6);
  out += char(major);
  out += char(0);
  const std::size_t n = major == 1 ? 2 : 4;
  for (std::size_t i = 0; i < n; ++i) out += char((header.size() >> (8 * i)) & 0xFF);
  return out + header + data;
}

std::string dict(const std::string& descr, const std::string& shape, bool fortran = false) {
  return "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
         ", 'shape': " + shape + ", }\n";
}

fs::path write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

// Raw bytes from a list of byte values.
std::string bytes(std::initializer_list<int> values) {
  std::string s;
  for (int v : values) s += char(v);
  return s;
}

std::string read_error(const fs::path& path, bool u2_is_bf16 = false) {
  try {
    read_npy(path, u2_is_bf16);
  } catch (const NpyError& e) {
    return e.what();
  }
  return "";
}

bool same_values(const Values& a, const Values& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) != std::isnan(b[i])) return false;
    if (!std::isnan(a[i]) && (a[i] != b[i] || std::signbit(a[i]) != std::signbit(b[i]))) {
      return false;
    }
  }
  return true;
}

const double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace

TEST_CASE("every storage round-trips exactly", "[npy]") {
  TempDir dir;
  const Tensor t({2, 3}, {1.5, -0.0, kInf, -kInf, kNaN, -2.0});
  struct Storage {
    NpyStorage storage;
    const char* descr;
    double extra;  // a value specific to the storage's precision
  };
  for (const Storage& s : {Storage{NpyStorage::f8, "<f8", 0.1},
                           Storage{NpyStorage::f4, "<f4", double(0.1f)},
                           Storage{NpyStorage::f2, "<f2", std::ldexp(3.0, -24)},
                           Storage{NpyStorage::bf16_bits, "<u2", std::ldexp(-129.0, -130)}}) {
    INFO(s.descr);
    Tensor u = t;
    u.data[0] = s.extra;
    write_npy(dir / "a.npy", u, s.storage);
    const NpyArray back = read_npy(dir / "a.npy", s.storage == NpyStorage::bf16_bits);
    CHECK(back.descr == s.descr);
    CHECK(back.tensor.shape == u.shape);
    CHECK(same_values(back.tensor.data, u.data));
  }
}

TEST_CASE("shapes of every rank round-trip, zero-size included", "[npy]") {
  TempDir dir;
  for (const Shape& shape : {Shape{}, Shape{5}, Shape{0}, Shape{2, 0, 3}, Shape{1, 2, 3, 4},
                             Shape{2, 1, 1, 2, 1}}) {
    INFO(shape_string(shape));
    Tensor t(shape);
    for (std::size_t i = 0; i < t.size(); ++i) t.data[i] = double(i) - 3.25;
    write_npy(dir / "s.npy", t);
    const NpyArray back = read_npy(dir / "s.npy");
    CHECK(back.tensor.shape == shape);
    CHECK(back.tensor.data == t.data);
  }
}

TEST_CASE("written files follow the NumPy layout", "[npy]") {
  TempDir dir;
  write_npy(dir / "x.npy", Tensor({3}, {1, 2, 3}), NpyStorage::f4);
  std::ifstream in(dir / "x.npy", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), {});
  REQUIRE(all.size() == 128 + 12);  // the 57-byte dict pads to 128
  CHECK(all.substr(0, 8) == std::string("\x93NUMPY\x01\x00", 8));
  const std::size_t header_len = std::uint8_t(all[8]) | (std::uint8_t(all[9]) << 8);
  CHECK(10 + header_len == 128);
  CHECK(all.substr(10, 57) == "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }");
  CHECK(all[127] == '\n');
  CHECK(all.substr(128, 4) == bytes({0x00, 0x00, 0x80, 0x3F}));  // 1.0f little endian
  int files = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir.path)) ++files;
  CHECK(files == 1);  // the temporary was renamed, not left behind
}

TEST_CASE("write_npy refuses values the storage cannot hold exactly", "[npy]") {
  TempDir dir;
  CHECK_THROWS_WITH(write_npy(dir / "a.npy", Tensor({2}, {1.0, 0.1}), NpyStorage::f4),
                    Contains("a.npy") && Contains("element 1 = 0.1") && Contains("'<f4'"));
  CHECK_THROWS_AS(write_npy(dir / "a.npy", Tensor({1}, {1e5}), NpyStorage::f2), NpyError);
  CHECK_THROWS_AS(write_npy(dir / "a.npy", Tensor({1}, {1.001}), NpyStorage::bf16_bits),
                  NpyError);
  CHECK_THROWS_WITH(write_npy(dir / "a.npy", Tensor({2}, {1.0}), NpyStorage::f8),
                    Contains("tensor holds 1 values but its shape [2] needs 2"));
  CHECK_FALSE(fs::exists(dir / "a.npy"));
  CHECK_THROWS_WITH(write_npy(dir / "missing" / "a.npy", Tensor({1}, {1.0})),
                    Contains("cannot create temporary file"));
}

TEST_CASE("write_npy replaces an existing file", "[npy]") {
  TempDir dir;
  write_npy(dir / "a.npy", Tensor({1}, {1.0}));
  write_npy(dir / "a.npy", Tensor({2}, {2.0, 3.0}));
  CHECK(read_npy(dir / "a.npy").tensor.data == std::vector<double>{2.0, 3.0});
}

TEST_CASE("hand-written fixtures of each dtype and byte order", "[npy]") {
  TempDir dir;
  const auto read = [&](int major, const std::string& descr, const std::string& shape,
                        const std::string& data, bool bf16 = false) {
    return read_npy(write_file(dir / "f.npy", npy_bytes(major, dict(descr, shape), data)),
                    bf16);
  };
  using V = std::vector<double>;
  CHECK(read(1, "<f8", "(1,)", bytes({0, 0, 0, 0, 0, 0, 0xF0, 0x3F})).tensor.data == V{1.0});
  CHECK(read(1, ">f8", "(1,)", bytes({0xC0, 0, 0, 0, 0, 0, 0, 0})).tensor.data == V{-2.0});
  CHECK(read(2, ">f4", "(1,)", bytes({0x3F, 0xC0, 0, 0})).tensor.data == V{1.5});
  CHECK(read(3, "<f2", "(3,)", bytes({0x01, 0x00, 0xFF, 0x7B, 0x00, 0xBC})).tensor.data ==
        V{std::ldexp(1.0, -24), 65504.0, -1.0});
  CHECK(read(1, ">f2", "(1,)", bytes({0x7C, 0x00})).tensor.data == V{kInf});
  CHECK(read(1, "<i4", "(2,)", bytes({0xFF, 0xFF, 0xFF, 0xFF, 7, 0, 0, 0})).tensor.data ==
        V{-1.0, 7.0});
  CHECK(read(1, "|i1", "(2,)", bytes({0x80, 0x7F})).tensor.data == V{-128.0, 127.0});
  CHECK(read(1, "|u1", "(1,)", bytes({0xFF})).tensor.data == V{255.0});
  CHECK(read(1, ">i2", "(1,)", bytes({0xFF, 0xFE})).tensor.data == V{-2.0});
  CHECK(read(1, "<u2", "(1,)", bytes({0x80, 0x3F})).tensor.data == V{16256.0});
  CHECK(read(1, "<u2", "(1,)", bytes({0x80, 0x3F}), true).tensor.data == V{1.0});
  CHECK(read(1, ">u2", "(1,)", bytes({0x40, 0xC0}), true).tensor.data == V{6.0});
  CHECK(read(1, "<i8", "(1,)", bytes({0, 0, 0, 0, 0, 0, 0x20, 0x80})).tensor.data ==
        V{-0x1p63 + 0x1p53});
  CHECK(read(1, ">u4", "(1,)", bytes({0xFF, 0xFF, 0xFF, 0xFF})).tensor.data ==
        V{4294967295.0});
  CHECK(read(1, "<f8", "()", bytes({0, 0, 0, 0, 0, 0, 0xF0, 0x3F})).tensor.shape == Shape{});
}

TEST_CASE("headers parse in every form NumPy and others write", "[npy]") {
  TempDir dir;
  const std::string one = bytes({0, 0, 0, 0, 0, 0, 0xF0, 0x3F});
  for (const std::string header :
       {"{\"descr\":\"<f8\",\"fortran_order\":False,\"shape\":(1,)}",
        "{'shape': (1L,), 'fortran_order': False, 'descr': '<f8'}\n",
        "  {  'descr' : '<f8' ,\n 'fortran_order' : False , 'shape' : ( 1 , ) , }   \n",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1, 1),}"}) {
    INFO(header);
    const NpyArray a = read_npy(write_file(dir / "h.npy", npy_bytes(1, header, one)));
    CHECK(a.tensor.data == std::vector<double>{1.0});
  }
}

TEST_CASE("Fortran order is transposed into C order", "[npy]") {
  TempDir dir;
  std::string data;  // 2x3 array [[0,1,2],[3,4,5]] stored column by column
  for (int v : {0, 3, 1, 4, 2, 5}) data += char(v);
  const NpyArray a = read_npy(
      write_file(dir / "f.npy", npy_bytes(1, dict("|u1", "(2, 3)", true), data)));
  CHECK(a.tensor.shape == Shape{2, 3});
  CHECK(a.tensor.data == std::vector<double>{0, 1, 2, 3, 4, 5});
  std::string cube;  // 2x2x2: element (i,j,k) = 4i+2j+k, stored with i fastest
  for (int k = 0; k < 2; ++k)
    for (int j = 0; j < 2; ++j)
      for (int i = 0; i < 2; ++i) cube += char(4 * i + 2 * j + k);
  const NpyArray b = read_npy(
      write_file(dir / "g.npy", npy_bytes(1, dict("|u1", "(2, 2, 2)", true), cube)));
  CHECK(b.tensor.data == std::vector<double>{0, 1, 2, 3, 4, 5, 6, 7});
}

TEST_CASE("missing and corrupt files name the file and the problem", "[npy]") {
  TempDir dir;
  const std::string one = bytes({0, 0, 0, 0, 0, 0, 0xF0, 0x3F});
  const std::string good = npy_bytes(1, dict("<f8", "(1,)"), one);
  const auto error_of = [&](const std::string& file_bytes) {
    return read_error(write_file(dir / "bad.npy", file_bytes));
  };
  CHECK_THAT(read_error(dir / "none.npy"), Contains("none.npy") && Contains("no such file"));
  CHECK_THAT(error_of(""), Contains("bad.npy") && Contains("truncated preamble"));
  CHECK_THAT(error_of(good.substr(0, 4)), Contains("truncated preamble"));
  CHECK_THAT(error_of("PK\x03\x04 not an npy file at all"), Contains("bad magic string"));
  CHECK_THAT(error_of(good.substr(0, 9)), Contains("truncated header length"));
  CHECK_THAT(error_of(good.substr(0, 30)), Contains("truncated header: expected"));
  CHECK_THAT(error_of(good.substr(0, good.size() - 3)),
             Contains("data too short") && Contains("needs 8 data bytes, the file holds 5"));
  CHECK_THAT(error_of(good + "xyz"),
             Contains("trailing data") && Contains("the file holds 11"));
  std::string v4 = good;
  v4[6] = 4;
  CHECK_THAT(error_of(v4), Contains("unsupported .npy format version 4.0"));
}

TEST_CASE("malformed header dicts are reported", "[npy]") {
  TempDir dir;
  const std::string one = bytes({0, 0, 0, 0, 0, 0, 0xF0, 0x3F});
  const auto error_of = [&](const std::string& header) {
    return read_error(write_file(dir / "bad.npy", npy_bytes(1, header, one)));
  };
  CHECK_THAT(error_of("{'descr': '<f8', 'shape': (1,)}"),
             Contains("bad.npy") && Contains("missing key 'fortran_order'"));
  CHECK_THAT(error_of("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': 1}"),
             Contains("unexpected key 'x'"));
  CHECK_THAT(error_of("{'descr': '<f8', 'descr': '<f8', 'fortran_order': False}"),
             Contains("duplicate key 'descr'"));
  CHECK_THAT(error_of("{'descr': '<f8', 'fortran_order': false, 'shape': (1,)}"),
             Contains("expected True or False"));
  CHECK_THAT(error_of("{'descr': '<f8, 'fortran_order': False, 'shape': (1,)}"),
             Contains("malformed header"));
  CHECK_THAT(error_of("{'descr': '<f8', 'fortran_order': False, 'shape': [1]}"),
             Contains("expected '('"));
  CHECK_THAT(error_of("{'descr': '<f8', 'fortran_order': False, 'shape': (-1,)}"),
             Contains("expected a non-negative integer"));
  CHECK_THAT(error_of("{'descr': '<f8', 'fortran_order': False, 'shape': (1,)} x"),
             Contains("text after the closing brace"));
  CHECK_THAT(error_of("{'descr': '<f8', 'fortran_order': False, 'shape': (1,)"),
             Contains("malformed header: expected ','"));
  CHECK_THAT(error_of("'descr': '<f8'"), Contains("expected '{'"));
  CHECK_THAT(error_of("{'descr': '<f8', 'fortran_order': False, 'shape': "
                      "(99999999999999999999999,)}"),
             Contains("dimension too large"));
  CHECK_THAT(error_of("{'descr': '<f8', 'fortran_order': False, 'shape': "
                      "(4294967296, 4294967296, 4294967296)}"),
             Contains("too many"));
}

TEST_CASE("unsupported dtypes are named", "[npy]") {
  TempDir dir;
  for (const std::string descr : {"<c8", "<f16", "|b1", "|O", "<U4", "<M8[ns]", "|f1", "!f4"}) {
    INFO(descr);
    const fs::path p = write_file(dir / "d.npy", npy_bytes(1, dict(descr, "(1,)"), "12345678"));
    CHECK_THAT(read_error(p), Contains("d.npy") && Contains("unsupported dtype '" + descr + "'"));
  }
  const fs::path p = write_file(
      dir / "s.npy",
      npy_bytes(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}", "1234"));
  CHECK_THAT(read_error(p), Contains("unsupported dtype: structured dtypes"));
}

TEST_CASE("64-bit integers that a double cannot hold are refused", "[npy]") {
  TempDir dir;
  const fs::path p = write_file(
      dir / "i.npy",
      npy_bytes(1, dict("<u8", "(2,)"),
                bytes({0, 0, 0, 0, 0, 0, 0x20, 0, 1, 0, 0, 0, 0, 0, 0x20, 0})));
  CHECK_THAT(read_error(p), Contains("element 1 = 9007199254740993") &&
                                Contains("not exactly representable"));
}

// ---- cross-checks against NumPy itself, when it is installed ----------------

namespace {

const char* kPython = "/usr/bin/python3";

bool have_numpy() {
  const std::string cmd = std::string(kPython) + " -c 'import numpy' >/dev/null 2>&1";
  return fs::exists(kPython) && std::system(cmd.c_str()) == 0;
}

int run_python(const TempDir& dir, const std::string& script) {
  write_file(dir / "script.py", script);
  const std::string cmd = std::string(kPython) + " " + (dir / "script.py").string() + " " +
                          dir.path.string();
  return std::system(cmd.c_str());
}

}  // namespace

TEST_CASE("files written by NumPy read back exactly", "[npy][numpy]") {
  if (!have_numpy()) {
    WARN("skipped: /usr/bin/python3 with numpy is not available");
    return;
  }
  TempDir dir;
  REQUIRE(run_python(dir, R"(
import sys, numpy as np
d = sys.argv[1]
np.save(d + '/a.npy', np.arange(6, dtype='<f8').reshape(2, 3) / 7)
np.save(d + '/b.npy', np.asfortranarray(np.array([[1.5, -2.25, 3], [4, 5e-3, 6]], dtype='>f4')))
np.save(d + '/c.npy', np.array([0.5, -0.0, np.inf, 6.1e-5], dtype='<f2'))
np.save(d + '/e.npy', np.array([[-32768], [32767]], dtype='>i2'))
for v in (2, 3):
    with open(d + '/v%d.npy' % v, 'wb') as f:
        np.lib.format.write_array(f, np.full((2, 2), 0.25), version=(v, 0))
)") == 0);
  const NpyArray a = read_npy(dir / "a.npy");
  CHECK(a.descr == "<f8");
  CHECK(a.tensor.shape == Shape{2, 3});
  for (int i = 0; i < 6; ++i) CHECK(a.tensor.data[i] == double(i) / 7);
  const NpyArray b = read_npy(dir / "b.npy");
  CHECK(b.descr == ">f4");
  CHECK(b.tensor.data == std::vector<double>{1.5, -2.25, 3, 4, double(5e-3f), 6});
  const NpyArray c = read_npy(dir / "c.npy");
  CHECK(same_values(c.tensor.data, {0.5, -0.0, kInf, std::ldexp(1023.0, -24)}));
  CHECK(read_npy(dir / "e.npy").tensor.data == std::vector<double>{-32768, 32767});
  CHECK(read_npy(dir / "v2.npy").tensor.data == std::vector<double>(4, 0.25));
  CHECK(read_npy(dir / "v3.npy").tensor.data == std::vector<double>(4, 0.25));
}

TEST_CASE("files written here load in NumPy with the same values", "[npy][numpy]") {
  if (!have_numpy()) {
    WARN("skipped: /usr/bin/python3 with numpy is not available");
    return;
  }
  TempDir dir;
  const Tensor t({2, 2}, {0.5, -3.0, std::ldexp(1.0, -24), 65504.0});
  write_npy(dir / "f8.npy", t, NpyStorage::f8);
  write_npy(dir / "f4.npy", t, NpyStorage::f4);
  write_npy(dir / "f2.npy", t, NpyStorage::f2);
  write_npy(dir / "bf.npy", Tensor({2}, {1.0, -0.5}), NpyStorage::bf16_bits);
  write_npy(dir / "scalar.npy", Tensor({}, {7.0}));
  CHECK(run_python(dir, R"(
import sys, numpy as np
d = sys.argv[1]
want = np.array([[0.5, -3.0], [2.0**-24, 65504.0]])
for name, dtype in (('f8', '<f8'), ('f4', '<f4'), ('f2', '<f2')):
    a = np.load(d + '/%s.npy' % name)
    assert a.dtype == np.dtype(dtype) and a.shape == (2, 2), name
    assert (a.astype(np.float64) == want).all(), name
bf = np.load(d + '/bf.npy')
assert bf.dtype == np.dtype('<u2') and list(bf) == [0x3F80, 0xBF00], bf
s = np.load(d + '/scalar.npy')
assert s.shape == () and s == 7.0
)") == 0);
}

TEST_CASE("untrusted files: a header length beyond 64 KiB or the file is refused unread", "[npy]") {
  TempDir dir("npy-hostile");
  // 250 bytes claiming a 0xFFFFFFF0-byte header: refused before anything is allocated.
  std::string huge("\x93NUMPY\x02\x00\xF0\xFF\xFF\xFF", 12);
  huge.append(238, '{');
  CHECK_THAT(read_error(write_file(dir.path / "huge.npy", huge)),
             Contains("header length 4294967280 is larger than the 65536 bytes"));
  const std::string big_header = npy_bytes(2, std::string(70000, ' '), "");
  CHECK_THAT(read_error(write_file(dir.path / "big.npy", big_header)),
             Contains("header length 70000 is larger than the 65536 bytes"));
}

TEST_CASE("untrusted files: another shape than the expected one comes back without data",
          "[npy]") {
  TempDir dir("npy-expected");
  const fs::path file = dir.path / "sparse.npy";
  {
    std::ofstream out(file, std::ios::binary);
    out << npy_bytes(1, dict("<f4", "(2147483648,)"), "");
  }
  fs::resize_file(file, fs::file_size(file) + 4ull * 2147483648ull);  // sparse: 8 GiB of holes
  const Shape expected{1, 1, 7, 16};
  const NpyArray a = read_npy(file, false, &expected);
  CHECK(a.tensor.shape == Shape{2147483648ull});
  CHECK(a.tensor.data.empty());
  CHECK(a.descr == "<f4");
  // The expected shape reads normally.
  const fs::path ok = write_file(dir.path / "ok.npy", npy_bytes(1, dict("<f4", "(1, 1, 7, 16)"),
                                                               std::string(4 * 7 * 16, '\0')));
  CHECK(read_npy(ok, false, &expected).tensor.size() == 7 * 16);
}

TEST_CASE("untrusted files: only regular files are read, never a FIFO or a link", "[npy]") {
  TempDir dir("npy-kinds");
  const fs::path fifo = dir.path / "fifo.npy", link = dir.path / "link.npy";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THAT(read_error(fifo), Contains("fifo.npy: not a regular file (a FIFO)"));
  fs::create_symlink("/dev/zero", link);
  CHECK_THAT(read_error(link), Contains("link.npy: not a regular file (a symbolic link)"));
  CHECK_THAT(read_error(dir.path), Contains("not a regular file (a directory)"));
}

TEST_CASE("NpyWriter writes write_npy's bytes from pieces in any order", "[npy]") {
  const TempDir dir("xposcheck-npy");
  Tensor t(Shape{3, 5, 7});
  for (std::size_t i = 0; i < t.size(); ++i) t.data[i] = std::ldexp(double(i) - 50.5, int(i % 9) - 4);
  write_npy(dir / "whole.npy", t);
  NpyWriter w(dir / "pieces.npy", t.shape);
  // Pieces of 7, 11, ... elements, last first.
  std::vector<std::pair<std::size_t, std::size_t>> pieces;
  for (std::size_t at = 0, n = 7; at < t.size(); at += n, n += 4) pieces.emplace_back(at, std::min(n, t.size() - at));
  for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) w.write(it->first, &t.data[it->first], it->second);
  CHECK_FALSE(fs::exists(dir / "pieces.npy"));  // appears only when committed
  w.commit();
  auto bytes = [](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  CHECK(bytes(dir / "pieces.npy") == bytes(dir / "whole.npy"));
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 2);
}

TEST_CASE("NpyWriter refuses missing elements and elements outside the array", "[npy]") {
  const TempDir dir("xposcheck-npy");
  const double v[4] = {1, 2, 3, 4};
  {
    NpyWriter w(dir / "short.npy", Shape{2, 2});
    w.write(0, v, 3);
    CHECK_THROWS_WITH(w.write(2, v, 3), Contains("short.npy") && Contains("outside"));
    CHECK_THROWS_WITH(w.commit(), Contains("short.npy") && Contains("3 of 4 elements written"));
  }
  {
    NpyWriter w(dir / "dropped.npy", Shape{4});
    w.write(0, v, 4);
  }  // never committed: nothing is left behind
  CHECK(fs::is_empty(dir.path));
  CHECK_THROWS_AS(NpyWriter(dir / "no-such-dir" / "x.npy", Shape{1}), NpyError);
}
