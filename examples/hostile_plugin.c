/*
 * Broken on purpose, in the ways $XPOSCHECK_TEST_HOSTILE names: "describe-hang"
 * (xposcheck_describe never returns), "bad-name" (a name with an ESC and a newline),
 * "bad-message" (fails every case with bytes that are not UTF-8 and an ESC).
 * Otherwise it is correct. The harness must stay usable whatever it does.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rope_fp32.h"

static int hostile(const char* what) {
  const char* mode = getenv("XPOSCHECK_TEST_HOSTILE");
  return mode && strcmp(mode, what) == 0;
}

XPOSCHECK_EXPORT uint32_t xposcheck_candidate_abi_version(void) {
  return XPOSCHECK_CANDIDATE_ABI_VERSION;
}

XPOSCHECK_EXPORT void xposcheck_describe(struct xposcheck_info* info) {
  while (hostile("describe-hang")) pause();
  info->name = hostile("bad-name") ? "evil\x1b[2J\nname" : "example-hostile";
  info->description = "C plugin that misbehaves as $XPOSCHECK_TEST_HOSTILE says";
}

XPOSCHECK_EXPORT int xposcheck_run(const struct xposcheck_case* c,
                                   const struct xposcheck_tensor* q_in,
                                   const struct xposcheck_tensor* k_in,
                                   struct xposcheck_tensor* q_out, struct xposcheck_tensor* k_out,
                                   char* error, size_t error_len) {
  if (hostile("bad-message")) {
    strncpy(error, "bad \xff\xfe bytes \x1b[31m red", error_len - 1);
    return XPOSCHECK_ERROR;
  }
  return rope_run(c, q_in, k_in, q_out, k_out, error, error_len);
}
