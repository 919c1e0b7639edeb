#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <cstdlib>
#include <stdexcept>

#include "shell_run.hpp"
#include "temp_dir.hpp"
#include "xposcheck/reference/atomic_file.hpp"

namespace xposcheck {
namespace {

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using testing::TempDir;

std::size_t entries(const fs::path& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

TEST_CASE("write_atomically replaces a file and leaves nothing beside it", "[atomic]") {
  TempDir dir;
  write_atomically(dir / "a.txt", "old");
  write_atomically(dir / "a.txt", "new");
  CHECK(testing::slurp(dir / "a.txt") == "new");
  CHECK(entries(dir.path) == 1);
}

TEST_CASE("write_atomically writes into a device instead of replacing it", "[atomic]") {
  write_atomically("/dev/null", "discarded");
  CHECK(fs::is_character_file("/dev/null"));

  TempDir dir;
  const fs::path fifo = dir / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // A reader at the other end, so that opening the FIFO for writing returns.
  const std::string command = "cat '" + fifo.string() + "' > '" + (dir / "got").string() + "' &";
  REQUIRE(std::system(command.c_str()) == 0);
  write_atomically(fifo, "through the pipe");
  CHECK(fs::is_fifo(fifo));
  for (int i = 0; i < 500 && testing::slurp(dir / "got").empty(); ++i) ::usleep(10000);
  CHECK(testing::slurp(dir / "got") == "through the pipe");
}

TEST_CASE("a failed write leaves no temporary and names the file", "[atomic]") {
  TempDir dir;
  CHECK_THROWS_WITH(write_atomically(dir / "missing" / "a.txt", "x"),
                    Contains((dir / "missing" / "a.txt").string()) &&
                        Contains("cannot create temporary file"));
  CHECK(entries(dir.path) == 0);

  // A writer that gives up: the exception passes through, the temporary goes.
  CHECK_THROWS_WITH(write_atomically(dir / "b.txt",
                                     [](std::ostream& out) {
                                       out << "half";
                                       throw std::runtime_error("writer gave up");
                                     }),
                    "writer gave up");
  CHECK(entries(dir.path) == 0);

  // The target is a directory: the rename fails, and again nothing is left behind.
  fs::create_directories(dir / "a-dir" / "inside");
  CHECK_THROWS_WITH(write_atomically(dir / "a-dir", "x"),
                    Contains((dir / "a-dir").string()) && Contains("cannot move"));
  CHECK(entries(dir.path) == 1);
}

}  // namespace
}  // namespace xposcheck
