/*
 * Broken on purpose, in the ways $XPOSCHECK_TEST_HOSTILE names: "describe-hang"
 * (xposcheck_describe never returns), "bad-name" (a name with an ESC and a newline),
 * "bad-message" (fails every case with bytes that are not UTF-8 and an ESC),
 * "future-abi" (declares an ABI version newer than the header's). "echo-case" fails
 * every case with what it was given (struct_size, M + N, the positions), so that a
 * test can see the struct the harness passes. Otherwise it is correct. The harness
 * must stay usable whatever it does.
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
  return hostile("future-abi") ? XPOSCHECK_CANDIDATE_ABI_VERSION + 1 : XPOSCHECK_EXAMPLE_ABI_VERSION;
}

/* "struct_size S rows R positions p0 p1 ..." or "... positions none". */
static int echo_case(const struct xposcheck_case* c, char* error, size_t error_len) {
  const int64_t* positions = xposcheck_case_key_positions(c);
  const int64_t rows = c->mem_len + c->seq_len;
  size_t used = (size_t)snprintf(error, error_len, "struct_size %u rows %lld positions%s",
                                 (unsigned)c->struct_size, (long long)rows, positions ? "" : " none");
  for (int64_t n = 0; positions && n < rows && used < error_len; ++n)
    used += (size_t)snprintf(error + used, error_len - used, " %lld", (long long)positions[n]);
  return XPOSCHECK_ERROR;
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
  if (hostile("echo-case")) return echo_case(c, error, error_len);
  if (hostile("bad-message")) {
    strncpy(error, "bad \xff\xfe bytes \x1b[31m red", error_len - 1);
    return XPOSCHECK_ERROR;
  }
  return rope_run(c, q_in, k_in, q_out, k_out, error, error_len);
}
