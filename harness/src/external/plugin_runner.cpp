#include "external/plugin_runner.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "external/plugin_abi.hpp"
#include "external/protocol.hpp"
#include "xposcheck/reference/atomic_file.hpp"
#include "xposcheck/harness/candidate_text.hpp"

namespace xposcheck::external {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

void write_json(const fs::path& file, const json& value) {
  write_atomically(file, value.dump(-1, ' ', false, json::error_handler_t::replace) + '\n');
}

json read_manifest(const fs::path& dir) {
  const fs::path file = dir / kManifestFile;
  std::ifstream in(file);
  if (!in) throw std::runtime_error(file.string() + ": cannot open");
  std::stringstream text;
  text << in.rdbuf();
  json m = json::parse(text.str());
  if (m.value("protocol", "") != kProtocolName || m.value("version", 0) != kProtocolVersion) {
    throw std::runtime_error(fmt::format("{}: not a version {} {} manifest", file.string(),
                                         kProtocolVersion, kProtocolName));
  }
  return m;
}

Tensor read_input(const json& entry, const char* which) {
  const bool bf16 = entry.at("dtype") == "bf16";
  return read_npy(entry.at("inputs").at(which).get<std::string>(), bf16).tensor;
}

void write_error(const json& entry, const std::string& kind, const std::string& message) {
  write_json(entry.at("error").get<std::string>(), {{"kind", kind}, {"message", message}});
}

// A case's tensors as the ABI sees them: inputs (with the upstream gradients for a
// backward case) and room for the two outputs (dq and dk for a backward case).
struct CaseBuffers {
  bool backward = false;
  AbiBuffer q_in, k_in, g_q, g_k, q_out, k_out;
};

bool is_backward(const json& entry) {
  const std::string name = entry.value(kPassKey, std::string(pass_name(Pass::forward)));
  const std::optional<Pass> pass = parse_pass(name);
  if (!pass) throw std::runtime_error(fmt::format("unknown pass '{}' in the manifest", candidate_text(name)));
  return *pass == Pass::backward;
}

CaseBuffers case_buffers(const json& entry, int32_t dtype) {
  CaseBuffers b;
  b.backward = is_backward(entry);
  encode_input(read_input(entry, "q"), dtype, b.q_in);
  encode_input(read_input(entry, "k"), dtype, b.k_in);
  if (b.backward) {
    encode_input(read_input(entry, "g_q"), dtype, b.g_q);
    encode_input(read_input(entry, "g_k"), dtype, b.g_k);
  }
  prepare_output(entry.at("shapes").at("q_out").get<Shape>(), dtype, b.q_out);
  prepare_output(entry.at("shapes").at("k_out").get<Shape>(), dtype, b.k_out);
  return b;
}

int call(const Plugin& plugin, const xposcheck_case& c, CaseBuffers& b, char* error, std::size_t len) {
  if (!b.backward) return plugin.run(&c, &b.q_in.view, &b.k_in.view, &b.q_out.view, &b.k_out.view, error, len);
  if (!plugin.run_backward) {
    std::snprintf(error, len, "this plugin has no backward pass (it does not export xposcheck_run_backward)");
    return XPOSCHECK_ERROR;
  }
  return plugin.run_backward(&c, &b.q_in.view, &b.k_in.view, &b.g_q.view, &b.g_k.view,
                             &b.q_out.view, &b.k_out.view, error, len);
}

// The child's work: inputs into ABI buffers, the call, outputs or an error record.
void run_case(const Plugin& plugin, const json& entry) {
  AbiCase c;
  abi_case(entry, c);
  if (const std::string why = unsupported(c.view, plugin.version); !why.empty()) {
    write_error(entry, "error", why);
    write_json(entry.at("result").get<std::string>(), {{"ok", false}});
    return;
  }
  CaseBuffers b = case_buffers(entry, c.view.dtype);
  char error[4096] = {};
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = call(plugin, c.view, b, error, sizeof error);
  const double compute_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  error[sizeof error - 1] = '\0';
  if (rc == XPOSCHECK_OK) {
    NpyStorage q_storage, k_storage;
    const Tensor q = decode_output(b.q_out, b.backward ? "dq" : "q_out", q_storage);
    const Tensor k = decode_output(b.k_out, b.backward ? "dk" : "k_out", k_storage);
    write_npy(entry.at("outputs").at("q").get<std::string>(), q, q_storage);
    write_npy(entry.at("outputs").at("k").get<std::string>(), k, k_storage);
  } else {
    const char* function = b.backward ? "xposcheck_run_backward" : "xposcheck_run";
    const std::string message = *error ? candidate_text(error) : fmt::format("{} returned {}", function, rc);
    write_error(entry, rc == XPOSCHECK_SHAPE_ERROR ? "shape" : "error", message);
  }
  write_json(entry.at("result").get<std::string>(), {{"compute_s", compute_s}, {"ok", rc == XPOSCHECK_OK}});
}

bool has_result(const json& entry) {
  return fs::exists(entry.at("error").get<std::string>()) ||
         (fs::exists(entry.at("outputs").at("q").get<std::string>()) &&
          fs::exists(entry.at("outputs").at("k").get<std::string>()));
}

// One case in a forked child, so that a crash in the library costs only this case.
void run_isolated(const Plugin& plugin, const json& entry) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
  if (pid == 0) {
    try {
      run_case(plugin, entry);
    } catch (const std::exception& e) {
      write_error(entry, "error", "plugin runner: " + candidate_text(e.what()));
    }
    std::fflush(nullptr);
    ::_exit(0);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (has_result(entry)) return;
  if (WIFSIGNALED(status)) {
    write_error(entry, "crash", fmt::format("xposcheck_run crashed: killed by signal {} ({})",
                                            WTERMSIG(status), ::strsignal(WTERMSIG(status))));
  } else {
    write_error(entry, "crash", fmt::format("the case's process exited with status {} inside "
                                            "xposcheck_run, without results", WEXITSTATUS(status)));
  }
}

int describe(const std::string& library) {
  const Plugin plugin = load_plugin(library);
  xposcheck_info info{};
  info.struct_size = sizeof info;
  plugin.describe(&info);
  const json j = {{"abi_version", plugin.version},
                  {kBackwardCapability, plugin.run_backward != nullptr},
                  {"name", info.name ? info.name : ""},
                  {"description", info.description ? info.description : ""}};
  std::cout << j.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
  return 0;
}

int run_batch(const std::string& library, const fs::path& dir) {
  const Plugin plugin = load_plugin(library);
  const json manifest = read_manifest(dir);
  for (const json& entry : manifest.at("cases")) run_isolated(plugin, entry);
  return 0;
}

}  // namespace

int plugin_runner_main(int argc, char** argv) {
  try {
    if (argc == 3 && std::strcmp(argv[1], "--describe") == 0) return describe(argv[2]);
    if (argc == 3) return run_batch(argv[1], argv[2]);
    std::fprintf(stderr, "usage: %s LIBRARY WORK_DIR | --describe LIBRARY\n", argv[0]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "xposcheck-plugin-runner: %s\n", e.what());
  }
  return 2;
}

}  // namespace xposcheck::external
