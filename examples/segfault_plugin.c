/*
 * Broken on purpose: correct, except that it writes through a NULL pointer when
 * N = 7. xposcheck must report CRASH for those cases and judge all the others.
 */
#include "rope_fp32.h"

XPOSCHECK_EXPORT uint32_t xposcheck_candidate_abi_version(void) {
  return XPOSCHECK_EXAMPLE_ABI_VERSION;
}

XPOSCHECK_EXPORT void xposcheck_describe(struct xposcheck_info* info) {
  info->name = "example-segfault";
  info->description = "C plugin that segfaults when N = 7";
}

XPOSCHECK_EXPORT int xposcheck_run(const struct xposcheck_case* c,
                                   const struct xposcheck_tensor* q_in,
                                   const struct xposcheck_tensor* k_in,
                                   struct xposcheck_tensor* q_out, struct xposcheck_tensor* k_out,
                                   char* error, size_t error_len) {
  if (c->seq_len == 7) {
    volatile int* nowhere = NULL;
    *nowhere = 1;
  }
  return rope_run(c, q_in, k_in, q_out, k_out, error, error_len);
}
