# Every dependency comes from a Debian 12 package; scripts/bootstrap installs them.
# A missing one stops the configure step with the package to install.
macro(xposcheck_require name package)
  find_package(${name} ${ARGN} QUIET)
  if(NOT ${name}_FOUND)
    message(FATAL_ERROR
      "xposcheck needs ${name}. On Debian 12: apt-get install ${package} "
      "(or run scripts/bootstrap, which installs everything).")
  endif()
endmacro()

xposcheck_require(xtensor libxtensor-dev)
xposcheck_require(xtensor-blas libxtensor-blas-dev)
xposcheck_require(Boost libboost-dev 1.74)
xposcheck_require(CLI11 libcli11-dev)
xposcheck_require(tomlplusplus libtomlplusplus-dev)
xposcheck_require(nlohmann_json nlohmann-json3-dev)
xposcheck_require(fmt libfmt-dev)
xposcheck_require(Threads libc6-dev)
xposcheck_require(BLAS libopenblas-dev)
if(XPOSCHECK_BUILD_TESTS)
  xposcheck_require(Catch2 catch2)
endif()
if(XPOSCHECK_BUILD_BENCH)
  xposcheck_require(benchmark libbenchmark-dev)
endif()
