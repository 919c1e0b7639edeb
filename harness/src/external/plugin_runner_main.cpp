// The xposcheck-plugin-runner executable (see plugin_runner.hpp).
#include "external/plugin_runner.hpp"

int main(int argc, char** argv) { return xposcheck::external::plugin_runner_main(argc, argv); }
