// .npy files: the general reader (headers, every dtype, Fortran order) and the
// harness's fast path for outputs, with and without the expected shape.
#include "external/fast_npy.hpp"
#include "fuzz_driver.hpp"
#include "xposcheck/reference/npy.hpp"

void xposcheck::fuzz::fuzz_one(const std::string& bytes, const std::string&) {
  const fs::path file = write_scratch("x.npy", bytes);
  const Shape expected{1, 1, 7, 16};
  guarded([&] { (void)read_npy(file); });
  guarded([&] { (void)read_npy(file, true, &expected); });
  guarded([&] { (void)external::read_output_npy(file); });
  external::read_output_npy(file, &expected);
}

XPOSCHECK_FUZZ_MAIN("npy")
