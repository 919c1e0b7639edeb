/*
 * A correct native candidate: rotary XPOS with memory in fp32 arithmetic, rounded
 * once to the case's dtype (see rope_fp32.h), each row at its own position
 * (ABI version 2's key_positions), and its backward pass (the same rotation by
 * -phi). Start a plugin of your own from here.
 *
 * Built a second time as a version 1 plugin (XPOSCHECK_EXAMPLE_ABI_VERSION=1,
 * example-rope-v1), which ignores key_positions, for the compatibility tests.
 */
#include "rope_fp32.h"

XPOSCHECK_EXPORT uint32_t xposcheck_candidate_abi_version(void) {
  return XPOSCHECK_EXAMPLE_ABI_VERSION;
}

XPOSCHECK_EXPORT void xposcheck_describe(struct xposcheck_info* info) {
#if XPOSCHECK_EXAMPLE_ABI_VERSION >= 2
  info->name = "example-rope";
#else
  info->name = "example-rope-v1";
#endif
  info->description = "C plugin: fp32 angles and arithmetic, one rounding to the dtype";
}

XPOSCHECK_EXPORT int xposcheck_run(const struct xposcheck_case* c,
                                   const struct xposcheck_tensor* q_in,
                                   const struct xposcheck_tensor* k_in,
                                   struct xposcheck_tensor* q_out, struct xposcheck_tensor* k_out,
                                   char* error, size_t error_len) {
  return rope_run(c, q_in, k_in, q_out, k_out, error, error_len);
}

/* Optional: without it the plugin is still a candidate, for the forward pass only. */
XPOSCHECK_EXPORT int xposcheck_run_backward(const struct xposcheck_case* c,
                                            const struct xposcheck_tensor* q_in,
                                            const struct xposcheck_tensor* k_in,
                                            const struct xposcheck_tensor* g_q,
                                            const struct xposcheck_tensor* g_k,
                                            struct xposcheck_tensor* dq, struct xposcheck_tensor* dk,
                                            char* error, size_t error_len) {
  (void)q_in; /* the map is linear: its gradient does not depend on the inputs */
  (void)k_in;
  return rope_run_backward(c, g_q, g_k, dq, dk, error, error_len);
}
