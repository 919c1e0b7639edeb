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
#include "xposcheck/reference/case_json.hpp"
#include "xposcheck/reference/packed.hpp"
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

// The case's input tensors, read once: q, k, and g_q, g_k for a backward case.
struct CaseInputs {
  bool backward = false;
  Tensor q, k, g_q, g_k;
};

CaseInputs case_inputs(const json& entry) {
  CaseInputs in;
  in.backward = is_backward(entry);
  in.q = read_input(entry, "q");
  in.k = read_input(entry, "k");
  if (in.backward) {
    in.g_q = read_input(entry, "g_q");
    in.g_k = read_input(entry, "g_k");
  }
  return in;
}

CaseBuffers case_buffers(const CaseInputs& in, const Case& c, int32_t dtype) {
  CaseBuffers b;
  b.backward = in.backward;
  encode_input(in.q, dtype, b.q_in);
  encode_input(in.k, dtype, b.k_in);
  if (b.backward) {
    encode_input(in.g_q, dtype, b.g_q);
    encode_input(in.g_k, dtype, b.g_k);
  }
  prepare_output(c.q_shape(), dtype, b.q_out);
  prepare_output(c.k_shape(), dtype, b.k_out);
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

// What one call of the plugin gave: its outputs, or an error record's kind and message.
struct CallResult {
  bool ok = false;
  std::string kind, message;
  Tensor q, k;
  NpyStorage q_storage = NpyStorage::f8, k_storage = NpyStorage::f8;
  double compute_s = 0;
};

CallResult call_plain(const Plugin& plugin, const Case& c, int32_t dtype, const std::string& case_id,
                      const CaseInputs& in) {
  CallResult result;
  AbiCase abi;
  abi_case(c, dtype, case_id, abi);
  if (std::string why = unsupported(abi.view, plugin.version); !why.empty()) {
    result.kind = "error";
    result.message = std::move(why);
    return result;
  }
  CaseBuffers b = case_buffers(in, c, dtype);
  char error[4096] = {};
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = call(plugin, abi.view, b, error, sizeof error);
  result.compute_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  error[sizeof error - 1] = '\0';
  result.ok = rc == XPOSCHECK_OK;
  if (result.ok) {
    result.q = decode_output(b.q_out, b.backward ? "dq" : "q_out", result.q_storage);
    result.k = decode_output(b.k_out, b.backward ? "dk" : "k_out", result.k_storage);
    return result;
  }
  const char* function = b.backward ? "xposcheck_run_backward" : "xposcheck_run";
  result.kind = rc == XPOSCHECK_SHAPE_ERROR ? "shape" : "error";
  result.message = *error ? candidate_text(error) : fmt::format("{} returned {}", function, rc);
  return result;
}

// A packed batch (docs/streams.md): the ABI's case is one sequence, so the plugin gets
// one call per sequence, each a plain case on its rows, and the outputs are packed.
CallResult call_packed(const Plugin& plugin, const Case& c, int32_t dtype, const std::string& case_id,
                       const CaseInputs& in) {
  CallResult whole;
  whole.ok = true;
  whole.q = Tensor(c.q_shape());
  whole.k = Tensor(c.k_shape());
  for (long i = 0; i < c.packed->count(); ++i) {
    const CaseInputs part{in.backward, sequence_queries(c, in.q, i), sequence_keys(c, in.k, i),
                          in.backward ? sequence_queries(c, in.g_q, i) : Tensor(),
                          in.backward ? sequence_keys(c, in.g_k, i) : Tensor()};
    CallResult one = call_plain(plugin, c.sequence_case(i), dtype, case_id, part);
    whole.compute_s += one.compute_s;
    if (one.ok && i > 0 && (one.q_storage != whole.q_storage || one.k_storage != whole.k_storage)) {
      one.ok = false;
      one.kind = "error";
      one.message = "returned another dtype than for the sequences before";
    }
    if (!one.ok) {
      one.message = fmt::format("packed sequence {} of {}: {}", i, c.packed->count(), one.message);
      one.compute_s = whole.compute_s;
      return one;
    }
    whole.q_storage = one.q_storage;
    whole.k_storage = one.k_storage;
    put_rows(whole.q, one.q, c.packed->first_query_row[static_cast<std::size_t>(i)]);
    put_rows(whole.k, one.k, c.packed->first_key_row[static_cast<std::size_t>(i)]);
  }
  return whole;
}

// The child's work: inputs into ABI buffers, the call(s), outputs or an error record.
void run_case(const Plugin& plugin, const json& entry) {
  const Case c = entry.at("params").get<Case>();
  const int32_t dtype = abi_dtype(entry.at("dtype").get<std::string>());
  const std::string case_id = entry.value("case_id", "");
  const CaseInputs in = case_inputs(entry);
  const CallResult r = c.packed ? call_packed(plugin, c, dtype, case_id, in) : call_plain(plugin, c, dtype, case_id, in);
  if (r.ok) {
    write_npy(entry.at("outputs").at("q").get<std::string>(), r.q, r.q_storage);
    write_npy(entry.at("outputs").at("k").get<std::string>(), r.k, r.k_storage);
  } else {
    write_error(entry, r.kind, r.message);
  }
  json result = {{"ok", r.ok}};
  if (r.compute_s > 0) result["compute_s"] = r.compute_s;
  write_json(entry.at("result").get<std::string>(), result);
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
