/*
 * Broken on purpose: the x-transformers XPOS bug in C. The scale table is built for
 * all M + N key positions and applied to the N query rows; where a framework would
 * raise "The size of tensor a (N) must match the size of tensor b (M + N)", this
 * kernel returns XPOSCHECK_SHAPE_ERROR with that message, which xposcheck reports
 * as DIM_MISMATCH with the sizes related to the case. Without memory it is correct.
 */
#include "rope_fp32.h"

XPOSCHECK_EXPORT uint32_t xposcheck_candidate_abi_version(void) {
  return XPOSCHECK_EXAMPLE_ABI_VERSION;
}

XPOSCHECK_EXPORT void xposcheck_describe(struct xposcheck_info* info) {
  info->name = "example-unsliced-scale";
  info->description = "C plugin with the x-transformers unsliced XPOS scale";
}

XPOSCHECK_EXPORT int xposcheck_run(const struct xposcheck_case* c,
                                   const struct xposcheck_tensor* q_in,
                                   const struct xposcheck_tensor* k_in,
                                   struct xposcheck_tensor* q_out, struct xposcheck_tensor* k_out,
                                   char* error, size_t error_len) {
  const int64_t scale_rows = c->mem_len + c->seq_len;
  if (c->xpos && scale_rows != c->seq_len) {
    snprintf(error, error_len,
             "The size of tensor a (%lld) must match the size of tensor b (%lld) at "
             "non-singleton dimension 2",
             (long long)c->seq_len, (long long)scale_rows);
    return XPOSCHECK_SHAPE_ERROR;
  }
  return rope_run(c, q_in, k_in, q_out, k_out, error, error_len);
}
