/*
 * Broken on purpose: rotates only the current segment's keys, so k_out has N rows
 * where M + N are expected. It says so by declaring the shape it produced;
 * xposcheck reports DIM_MISMATCH ("got [.., N, D]", N related to the case).
 */
#include "rope_fp32.h"

XPOSCHECK_EXPORT uint32_t xposcheck_candidate_abi_version(void) {
  return XPOSCHECK_EXAMPLE_ABI_VERSION;
}

XPOSCHECK_EXPORT void xposcheck_describe(struct xposcheck_info* info) {
  info->name = "example-drop-memory";
  info->description = "C plugin returning k_out without the memory rows";
}

XPOSCHECK_EXPORT int xposcheck_run(const struct xposcheck_case* c,
                                   const struct xposcheck_tensor* q_in,
                                   const struct xposcheck_tensor* k_in,
                                   struct xposcheck_tensor* q_out, struct xposcheck_tensor* k_out,
                                   char* error, size_t error_len) {
  const int rc = rope_rotate(c, q_in, q_out, 0, rope_query_rows(c), +1, error, error_len);
  if (rc != XPOSCHECK_OK) return rc;
  k_out->shape[2] = c->seq_len; /* the bug: the M memory rows are left out */
  return rope_rotate(c, k_in, k_out, c->mem_len, rope_key_rows(c), -1, error, error_len);
}
