// The work-directory protocol's JSON files as the harness reads them: a case's error
// and result records (read_case), candidate.json (capabilities), and the manifest as
// the plugin runner turns it into the C ABI's case. The seed's name says which.
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "external/launch.hpp"
#include "external/plugin_abi.hpp"
#include "external/protocol.hpp"
#include "fuzz_driver.hpp"

namespace {

using namespace xposcheck;
namespace fs = std::filesystem;

void read_records(const std::string& bytes, bool error) {
  const fs::path dir = fuzz::scratch();
  const external::CaseFiles files = external::case_files(dir, 0);
  for (const fs::path& f : {files.error, files.result, files.q_out, files.k_out}) fs::remove(f);
  fuzz::write_scratch((error ? files.error : files.result).filename().string(), bytes);
  Case c;
  c.head_dim = 16;
  c.seq_len = 7;
  const Tensor q(c.q_shape()), k(c.k_shape());
  const Job job{&c, DType::fp32, &q, &k};
  (void)external::read_case(job, files);  // never throws: failures are CRASH records
}

void read_manifest(const std::string& bytes) {
  const nlohmann::json m = nlohmann::json::parse(bytes);
  for (const nlohmann::json& entry : m.at("cases")) {
    external::AbiCase c;
    external::abi_case(entry, c);
    // A plugin reads M + N positions from the pointer, whatever the manifest held.
    const auto rows = static_cast<std::size_t>(c.view.mem_len + c.view.seq_len);
    if (c.view.key_positions && c.key_positions.size() != rows) std::abort();
    (void)entry.at("shapes").at("q_out").get<Shape>();
  }
}

}  // namespace

void xposcheck::fuzz::fuzz_one(const std::string& bytes, const std::string& kind) {
  if (kind.starts_with("error")) return read_records(bytes, true);
  if (kind.starts_with("result")) return read_records(bytes, false);
  if (kind.starts_with("candidate")) {
    write_scratch(external::kCapabilitiesFile, bytes);
    (void)external::can_wait_for_manifest(scratch());
    (void)external::serves_batches(scratch());
    return;
  }
  read_manifest(bytes);
}

XPOSCHECK_FUZZ_MAIN("protocol")
