#pragma once
// A small mutation fuzzer for the readers of untrusted input (libFuzzer needs
// Clang): each driver defines fuzz_one(bytes, kind) and calls fuzz_main. Seeds come
// from a checked-in corpus directory; a deterministic xorshift generator mutates them
// (bit flips, byte changes, interesting numbers, insertions, deletions, duplicated
// and spliced ranges) for a bounded time. A reader may reject an input only with a
// std::exception carrying a message; a crash, a hang (alarm), another exception, an
// empty message or an allocation beyond the address-space limit (std::bad_alloc)
// fails the run, and the input is saved for replay (`fuzz_x --replay FILE`).
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <new>
#include <string>
#include <vector>

namespace xposcheck::fuzz {

namespace fs = std::filesystem;

// One input: its bytes and the seed file's name (drivers with several input kinds
// dispatch on it).
void fuzz_one(const std::string& bytes, const std::string& kind);

class XorShift {
 public:
  explicit XorShift(std::uint64_t seed) : s_(seed ? seed : 88172645463325252ull) {}
  std::uint64_t next() {
    s_ ^= s_ << 13;
    s_ ^= s_ >> 7;
    s_ ^= s_ << 17;
    return s_;
  }
  std::size_t below(std::size_t n) { return n ? next() % n : 0; }

 private:
  std::uint64_t s_;
};

// Runs f; a rejection with a message is fine, anything else goes to run_input.
template <class F>
void guarded(const F& f) {
  try {
    f();
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    if (!*e.what()) throw;
  }
}

// A directory of this process for readers that take files, removed at exit.
inline const fs::path& scratch() {
  struct Dir {
    fs::path path = fs::temp_directory_path() / ("xposcheck-fuzz-" + std::to_string(::getpid()));
    Dir() { fs::create_directories(path); }
    ~Dir() {
      std::error_code ignored;
      fs::remove_all(path, ignored);
    }
  };
  static const Dir dir;
  return dir.path;
}

inline fs::path write_scratch(const std::string& name, const std::string& bytes) {
  const fs::path file = scratch() / name;
  std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
  return file;
}

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void mutate_once(std::string& s, const std::vector<std::string>& seeds, XorShift& r) {
  static const char* kInteresting[] = {"0", "-1", "4294967295", "18446744073709551616", "1e308",
                                       "NaN", "\xff\xfe", "\x1b[2J", "\"", "{", "[", "(", ")", ",",
                                       "'", "\\u0000", "\n", "65535", "2147483648"};
  const std::size_t at = r.below(s.size() + 1);
  switch (r.below(8)) {
    case 0: if (!s.empty()) s[r.below(s.size())] ^= static_cast<char>(1u << r.below(8)); break;
    case 1: if (!s.empty()) s[r.below(s.size())] = static_cast<char>(r.next()); break;
    case 2: s.insert(at, kInteresting[r.below(std::size(kInteresting))]); break;
    case 3: if (!s.empty()) s.erase(r.below(s.size()), 1 + r.below(16)); break;
    case 4: {  // duplicate a range
      if (s.empty()) break;
      const std::size_t from = r.below(s.size());
      s.insert(at, s.substr(from, 1 + r.below(64)));
      break;
    }
    case 5: {  // splice in part of another seed
      const std::string& other = seeds[r.below(seeds.size())];
      if (!other.empty()) s.insert(at, other.substr(r.below(other.size()), 1 + r.below(64)));
      break;
    }
    case 6: if (s.size() > 1) s.resize(r.below(s.size())); break;
    default: {  // a little-endian number where one may be (.npy lengths, shapes)
      const std::uint32_t v = r.below(2) ? static_cast<std::uint32_t>(r.next()) : 0xFFFFFFF0u;
      if (s.size() >= 4) {
        const std::size_t p = r.below(s.size() - 3);
        for (int b = 0; b < 4; ++b) s[p + b] = static_cast<char>(v >> (8 * b));
      }
    }
  }
  if (s.size() > (1u << 16)) s.resize(1u << 16);
}

// Runs one input; returns false (after saving it) when the reader misbehaved.
inline bool run_input(const std::string& bytes, const std::string& kind, const char* name) {
  const char* problem = nullptr;
  std::string what;
  alarm(10);  // a hang fails the run (SIGALRM's default action ends it)
  try {
    fuzz_one(bytes, kind);
  } catch (const std::bad_alloc&) {
    problem = "std::bad_alloc: an allocation the input's size does not justify";
  } catch (const std::exception& e) {
    what = e.what();
    if (what.empty()) problem = "an exception without a message";
  } catch (...) {
    problem = "an exception that is not a std::exception";
  }
  alarm(0);
  if (!problem) return true;
  const std::string saved = fs::temp_directory_path() / (std::string("fuzz-failure-") + name + "-" + kind);
  std::ofstream(saved, std::ios::binary) << bytes;
  std::fprintf(stderr, "%s: %s (input saved to %s)\n", name, problem, saved.c_str());
  return false;
}

inline void limit_memory() {
#if !defined(__SANITIZE_ADDRESS__)
  // An unbounded allocation shows as std::bad_alloc instead of swapping the machine.
  const rlimit limit{2ull << 30, 2ull << 30};
  setrlimit(RLIMIT_AS, &limit);
#endif
}

// fuzz_x CORPUS_DIR SECONDS [SEED] | fuzz_x --replay FILE KIND
inline int fuzz_main(int argc, char** argv, const char* name) {
  if (argc == 4 && std::string(argv[1]) == "--replay") return run_input(read_file(argv[2]), argv[3], name) ? 0 : 1;
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR SECONDS [SEED] | --replay FILE KIND\n", argv[0]);
    return 2;
  }
  limit_memory();
  std::vector<std::string> seeds, kinds;
  for (const auto& entry : fs::directory_iterator(argv[1])) {
    seeds.push_back(read_file(entry.path()));
    kinds.push_back(entry.path().filename().string());
  }
  if (seeds.empty()) {
    std::fprintf(stderr, "%s: no seeds in %s\n", name, argv[1]);
    return 2;
  }
  XorShift r(argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 1);
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(std::atof(argv[2]));
  std::size_t runs = 0;
  for (std::size_t i = 0; i < seeds.size(); ++i, ++runs) {
    if (!run_input(seeds[i], kinds[i], name)) return 1;
  }
  while (std::chrono::steady_clock::now() < end) {
    const std::size_t k = r.below(seeds.size());
    std::string input = seeds[k];
    for (std::size_t m = 1 + r.below(8); m > 0; --m) mutate_once(input, seeds, r);
    if (!run_input(input, kinds[k], name)) return 1;
    ++runs;
  }
  std::printf("%s: %zu inputs from %zu seeds, no failure\n", name, runs, seeds.size());
  return 0;
}

}  // namespace xposcheck::fuzz

#define XPOSCHECK_FUZZ_MAIN(name) \
  int main(int argc, char** argv) { return xposcheck::fuzz::fuzz_main(argc, argv, name); }
