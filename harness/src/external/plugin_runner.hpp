#pragma once
// xposcheck-plugin-runner: runs a native candidate library over a work directory
// (the subprocess protocol), one forked child per case.
//
//   xposcheck-plugin-runner LIBRARY WORK_DIR     run the batch in WORK_DIR
//   xposcheck-plugin-runner --describe LIBRARY   print {"abi_version", "name", "description"}
//
// Exit status 2 when the library or the work directory cannot be used.
namespace xposcheck::external {

int plugin_runner_main(int argc, char** argv);

}  // namespace xposcheck::external
