/*
 * Rotary XPOS in fp32, as most frameworks compute it: angles p * omega in fp32,
 * cosf / sinf / powf, products and sums in fp32, one rounding to the case's dtype.
 * Shared by the example plugins; each one breaks it in one way (or not at all).
 */
#ifndef XPOSCHECK_EXAMPLE_ROPE_FP32_H
#define XPOSCHECK_EXAMPLE_ROPE_FP32_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "xposcheck/candidate.h"

/* The ABI version the examples are built for: the header's, unless the build asks
 * for an older one (CMakeLists.txt builds rope_plugin.c for version 1 too). */
#ifndef XPOSCHECK_EXAMPLE_ABI_VERSION
#define XPOSCHECK_EXAMPLE_ABI_VERSION XPOSCHECK_CANDIDATE_ABI_VERSION
#endif

static inline float rope_load(const struct xposcheck_tensor* t, int64_t i) {
  if (t->dtype == XPOSCHECK_DTYPE_FP32) return ((const float*)t->data)[i];
  const uint16_t bits = ((const uint16_t*)t->data)[i];
  return t->dtype == XPOSCHECK_DTYPE_BF16 ? xposcheck_bf16_to_float(bits) : xposcheck_fp16_to_float(bits);
}

static inline void rope_store(struct xposcheck_tensor* t, int64_t i, float v) {
  if (t->dtype == XPOSCHECK_DTYPE_FP32) {
    ((float*)t->data)[i] = v;
    return;
  }
  ((uint16_t*)t->data)[i] = t->dtype == XPOSCHECK_DTYPE_BF16 ? xposcheck_float_to_bf16(v) : xposcheck_float_to_fp16(v);
}

/* cos, sin and XPOS scale of every pair at one position; e = +1 queries, -1 keys. */
static inline void rope_tables(const struct xposcheck_case* c, int64_t position, int e, float* cs,
                        float* sn, float* scale) {
  const int64_t pairs = c->rotary_dim / 2;
  const float r = (float)c->rotary_dim;
  double theta = c->base;
  if (c->base_rescale != 1.0) theta *= pow(c->base_rescale, r / (r - 2.0));
  const float t = (float)position / (float)c->interpolation;
  const float power = (float)(position - c->center) / (float)c->scale_base;
  for (int64_t j = 0; j < pairs; ++j) {
    const float inv_freq = 1.0f / powf((float)theta, (float)(2 * j) / r);
    const float angle = t * inv_freq;
    cs[j] = cosf(angle);
    sn[j] = sinf(angle);
    scale[j] = 1.0f;
    if (c->xpos) {
      const float zeta = (2.0f * (float)j + 0.4f * r) / (1.4f * r);
      const float sigma = powf(zeta, power);
      scale[j] = e > 0 ? sigma : 1.0f / sigma;
    }
  }
}

/* Where the rows of one tensor sit. With the case's explicit positions (ABI version
 * 2) row r is at positions[r]; without them at first + r. The examples built for
 * version 1 leave positions NULL: a version 1 plugin never gets a case that has them. */
struct rope_rows {
  int64_t first;
  const int64_t* positions;
};

static inline int64_t rope_position(struct rope_rows rows, int64_t r) {
  return rows.positions ? rows.positions[r] : rows.first + r;
}

static inline const int64_t* rope_key_positions(const struct xposcheck_case* c) {
#if XPOSCHECK_EXAMPLE_ABI_VERSION >= 2
  return xposcheck_case_key_positions(c);
#else
  (void)c;
  return NULL;
#endif
}

/* Key rows: first_position + n, or the case's positions. */
static inline struct rope_rows rope_key_rows(const struct xposcheck_case* c) {
  const struct rope_rows rows = {c->first_position, rope_key_positions(c)};
  return rows;
}

/* Query rows: the last N key rows. */
static inline struct rope_rows rope_query_rows(const struct xposcheck_case* c) {
  const int64_t* keys = rope_key_positions(c);
  const struct rope_rows rows = {c->first_position + c->mem_len, keys ? keys + c->mem_len : NULL};
  return rows;
}

/*
 * Rotates rows [first_row, first_row + out rows) of `in` into `out` (whose row 0 is
 * in's first_row); row r of `in` sits at rope_position(at, r). direction -1 rotates
 * by -phi instead of +phi (with the same scale): the forward map transposed, which
 * is the backward pass.
 */
static inline int rope_rotate_by(const struct xposcheck_case* c, const struct xposcheck_tensor* in,
                       struct xposcheck_tensor* out, int64_t first_row, struct rope_rows at,
                       int e, int direction, char* error, size_t error_len) {
  const int64_t in_rows = in->shape[2], out_rows = out->shape[2], d = c->head_dim;
  const int64_t pairs = c->rotary_dim / 2, lead = c->batch * c->heads;
  float* tables = (float*)malloc(3 * (size_t)pairs * sizeof(float));
  if (!tables) {
    snprintf(error, error_len, "out of memory for %lld pairs", (long long)pairs);
    return XPOSCHECK_ERROR;
  }
  float *cs = tables, *sn = tables + pairs, *scale = tables + 2 * pairs;
  for (int64_t r = 0; r < out_rows; ++r) {
    const int64_t row = first_row + r;
    rope_tables(c, rope_position(at, row), e, cs, sn, scale);
    if (direction < 0)
      for (int64_t j = 0; j < pairs; ++j) sn[j] = -sn[j];
    for (int64_t l = 0; l < lead; ++l) {
      const int64_t src = (l * in_rows + row) * d, dst = (l * out_rows + r) * d;
      for (int64_t j = 0; j < pairs; ++j) {
        const int64_t a = c->layout == XPOSCHECK_LAYOUT_HALF ? j : 2 * j;
        const int64_t b = c->layout == XPOSCHECK_LAYOUT_HALF ? j + pairs : 2 * j + 1;
        const float xa = rope_load(in, src + a), xb = rope_load(in, src + b);
        rope_store(out, dst + a, (xa * cs[j] - xb * sn[j]) * scale[j]);
        rope_store(out, dst + b, (xb * cs[j] + xa * sn[j]) * scale[j]);
      }
      for (int64_t i = c->rotary_dim; i < d; ++i) rope_store(out, dst + i, rope_load(in, src + i));
    }
  }
  free(tables);
  return XPOSCHECK_OK;
}

static inline int rope_rotate(const struct xposcheck_case* c, const struct xposcheck_tensor* in,
                       struct xposcheck_tensor* out, int64_t first_row, struct rope_rows at,
                       int e, char* error, size_t error_len) {
  return rope_rotate_by(c, in, out, first_row, at, e, +1, error, error_len);
}

/* The whole case: every key row at its position, the queries at the last N. */
static inline int rope_run(const struct xposcheck_case* c, const struct xposcheck_tensor* q_in,
                    const struct xposcheck_tensor* k_in, struct xposcheck_tensor* q_out,
                    struct xposcheck_tensor* k_out, char* error, size_t error_len) {
  const int rc = rope_rotate(c, q_in, q_out, 0, rope_query_rows(c), +1, error, error_len);
  if (rc != XPOSCHECK_OK) return rc;
  return rope_rotate(c, k_in, k_out, 0, rope_key_rows(c), -1, error, error_len);
}

/* The backward pass: the upstream gradients rotated by -phi with the same scales. */
static inline int rope_run_backward(const struct xposcheck_case* c,
                    const struct xposcheck_tensor* g_q, const struct xposcheck_tensor* g_k,
                    struct xposcheck_tensor* dq, struct xposcheck_tensor* dk, char* error,
                    size_t error_len) {
  const int rc = rope_rotate_by(c, g_q, dq, 0, rope_query_rows(c), +1, -1, error, error_len);
  if (rc != XPOSCHECK_OK) return rc;
  return rope_rotate_by(c, g_k, dk, 0, rope_key_rows(c), -1, -1, error, error_len);
}

#endif /* XPOSCHECK_EXAMPLE_ROPE_FP32_H */
