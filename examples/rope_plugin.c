/*
 * A correct native candidate: rotary XPOS with memory in fp32 arithmetic, rounded
 * once to the case's dtype (see rope_fp32.h). Start a plugin of your own from here.
 */
#include "rope_fp32.h"

XPOSCHECK_EXPORT uint32_t xposcheck_candidate_abi_version(void) {
  return XPOSCHECK_CANDIDATE_ABI_VERSION;
}

XPOSCHECK_EXPORT void xposcheck_describe(struct xposcheck_info* info) {
  info->name = "example-rope";
  info->description = "C plugin: fp32 angles and arithmetic, one rounding to the dtype";
}

XPOSCHECK_EXPORT int xposcheck_run(const struct xposcheck_case* c,
                                   const struct xposcheck_tensor* q_in,
                                   const struct xposcheck_tensor* k_in,
                                   struct xposcheck_tensor* q_out, struct xposcheck_tensor* k_out,
                                   char* error, size_t error_len) {
  return rope_run(c, q_in, k_in, q_out, k_out, error, error_len);
}
