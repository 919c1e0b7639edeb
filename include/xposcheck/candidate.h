/*
 * xposcheck native candidate ABI, version 2.
 *
 * A native candidate is a shared library exporting the three functions declared
 * below with C linkage, and optionally a fourth, xposcheck_run_backward, for the
 * backward pass. xposcheck loads it in an isolated child process (the
 * xposcheck-plugin-runner executable, one fork per case), so a crash, abort or hang
 * inside the library costs one case (CRASH or TIMEOUT), never the sweep.
 *
 *   xposcheck sweep --grid cases/smoke.toml --candidate-lib ./libmy_rope.so
 *
 * Tensors are dense and C-ordered (the last index fastest): q is
 * [batch, heads, N, D], k is [batch, heads, M + N, D]. fp32 data is `float`; bf16 and
 * fp16 data are `uint16_t` bit patterns (the inline helpers at the end convert them).
 * See docs/protocol.md for the math each case asks for, and for the version history.
 *
 * Versions. xposcheck_candidate_abi_version returns the version whose fields the
 * plugin reads; xposcheck accepts 1 up to its own, and refuses the library otherwise.
 *   1  rows at consecutive positions from xposcheck_case.first_position.
 *   2  adds xposcheck_case.key_positions: a position for every row. A version 1
 *      plugin keeps working on contiguous cases; a case with explicit positions is
 *      reported to it as CRASH, "unsupported: ... need ABI version 2", without a call.
 * Fields are only ever appended (struct_size says how far the caller's struct goes),
 * so a plugin built against an older header reads the case it knows. Returning
 * XPOSCHECK_CANDIDATE_ABI_VERSION claims the newest version on every recompile: do
 * so only if the plugin follows what each version adds.
 *
 * This header is C99 and C++ compatible and has no dependencies.
 */
#ifndef XPOSCHECK_CANDIDATE_H
#define XPOSCHECK_CANDIDATE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define XPOSCHECK_CANDIDATE_ABI_VERSION 2u

#if defined(_WIN32)
#define XPOSCHECK_EXPORT __declspec(dllexport)
#else
#define XPOSCHECK_EXPORT __attribute__((visibility("default")))
#endif

enum xposcheck_dtype {
  XPOSCHECK_DTYPE_FP32 = 1, /* float */
  XPOSCHECK_DTYPE_BF16 = 2, /* uint16_t bit patterns */
  XPOSCHECK_DTYPE_FP16 = 3  /* uint16_t bit patterns (IEEE binary16) */
};

enum xposcheck_layout {
  XPOSCHECK_LAYOUT_HALF = 0,       /* pair j = (j, j + R/2): GPT-NeoX, rotate_half */
  XPOSCHECK_LAYOUT_INTERLEAVED = 1 /* pair j = (2j, 2j + 1): GPT-J, rotate_every_two */
};

/* What xposcheck_run returns. */
enum xposcheck_status {
  XPOSCHECK_OK = 0,
  XPOSCHECK_ERROR = 1,       /* reported as CRASH with the error text */
  XPOSCHECK_SHAPE_ERROR = 2  /* a shape error inside the kernel: reported as DIM_MISMATCH */
};

/* One case, every parameter resolved (docs/protocol.md lists their meaning). */
struct xposcheck_case {
  uint32_t struct_size; /* sizeof(struct xposcheck_case) of the caller */
  int32_t dtype;        /* enum xposcheck_dtype */
  int64_t head_dim;     /* D */
  int64_t rotary_dim;   /* R: features [0, R) rotate, [R, D) pass through */
  double base;          /* theta */
  double base_rescale;  /* f: theta' = theta * f^(R / (R - 2)) */
  double interpolation; /* alpha: angles are p * omega / alpha */
  int32_t xpos;         /* 0 or 1 */
  int32_t layout;       /* enum xposcheck_layout */
  double scale_base;    /* B */
  int64_t seq_len;      /* N: query rows, at the positions of the last N key rows */
  int64_t mem_len;      /* M: key rows before the queries' (memory, cached keys) */
  int64_t center;       /* c: XPOS centre, a position in the case's frame */
  int64_t batch;
  int64_t heads;
  const char* case_id;  /* e.g. "D128-N1024-M100", for messages */
  /* The frame: key row n sits at position first_position + n, query row m at
   * first_position + M + m. -M is SPEC's segment frame (queries at 0 .. N-1), 0 the
   * cache frame (keys at 0 .. M+N-1). Appended to version 1: present when
   * struct_size covers it (always, from xposcheck itself). With key_positions set
   * it is key_positions[0] and says nothing about the other rows. */
  int64_t first_position;
  /* Version 2: the position of every row when the case gives them one by one
   * (any integers, neither contiguous nor ordered): key row n at key_positions[n],
   * query row m at key_positions[M + m]; exactly M + N entries, owned by xposcheck,
   * valid during the call. NULL for a contiguous case (first_position says it
   * all). Read it through xposcheck_case_key_positions, which checks struct_size. */
  const int64_t* key_positions;
};

/* The case's explicit positions, or NULL when it has none or its caller's struct
 * predates them (struct_size short of the field). */
static inline const int64_t* xposcheck_case_key_positions(const struct xposcheck_case* c) {
  const size_t end = offsetof(struct xposcheck_case, key_positions) + sizeof c->key_positions;
  return c->struct_size >= end ? c->key_positions : NULL;
}

struct xposcheck_tensor {
  void* data;
  int32_t dtype;        /* enum xposcheck_dtype */
  int32_t rank;         /* 4 */
  int64_t shape[4];
  size_t capacity;      /* bytes at data (outputs: room for fp32 of the expected shape) */
};

struct xposcheck_info {
  uint32_t struct_size;
  const char* name;        /* short, e.g. "my-rope-fp32" */
  const char* description; /* one line */
};

/* The three exported functions. */
XPOSCHECK_EXPORT uint32_t xposcheck_candidate_abi_version(void);
XPOSCHECK_EXPORT void xposcheck_describe(struct xposcheck_info* info);

/*
 * Computes q_out and k_out. The output tensors arrive with the expected dtype and
 * shape and `capacity` bytes of storage (enough for fp32 of that shape). A
 * candidate should fill them in place; it may instead declare what it produced by
 * changing dtype, rank or shape (within capacity): xposcheck then reports the
 * mismatch. On failure return XPOSCHECK_ERROR or XPOSCHECK_SHAPE_ERROR with a
 * NUL-terminated message in error[0 .. error_len).
 */
XPOSCHECK_EXPORT int xposcheck_run(const struct xposcheck_case* c,
                                   const struct xposcheck_tensor* q_in,
                                   const struct xposcheck_tensor* k_in,
                                   struct xposcheck_tensor* q_out,
                                   struct xposcheck_tensor* k_out, char* error, size_t error_len);

/*
 * Optional: the backward pass. Given the upstream gradients g_q = dL/dq_out and
 * g_k = dL/dk_out (shaped and typed as q_in and k_in), computes dq = dL/dq_in and
 * dk = dL/dk_in: each pair rotated by -phi and multiplied by the same sigma^e as the
 * forward pass (the transpose of the forward map), features [R, D) passed through.
 * Found by its symbol: a library that does not export it simply gets no backward
 * cases. Its signature is the same in versions 1 and 2 (the case, key_positions
 * included, is xposcheck_run's); dq and dk arrive, and are returned, as the outputs
 * of xposcheck_run are, and the return codes mean the same.
 */
XPOSCHECK_EXPORT int xposcheck_run_backward(const struct xposcheck_case* c,
                                            const struct xposcheck_tensor* q_in,
                                            const struct xposcheck_tensor* k_in,
                                            const struct xposcheck_tensor* g_q,
                                            const struct xposcheck_tensor* g_k,
                                            struct xposcheck_tensor* dq, struct xposcheck_tensor* dk,
                                            char* error, size_t error_len);

typedef uint32_t (*xposcheck_abi_version_fn)(void);
typedef void (*xposcheck_describe_fn)(struct xposcheck_info*);
typedef int (*xposcheck_run_fn)(const struct xposcheck_case*, const struct xposcheck_tensor*,
                                const struct xposcheck_tensor*, struct xposcheck_tensor*,
                                struct xposcheck_tensor*, char*, size_t);
typedef int (*xposcheck_run_backward_fn)(const struct xposcheck_case*,
                                         const struct xposcheck_tensor*,
                                         const struct xposcheck_tensor*,
                                         const struct xposcheck_tensor*,
                                         const struct xposcheck_tensor*, struct xposcheck_tensor*,
                                         struct xposcheck_tensor*, char*, size_t);

/* ---- dtype conversions: exact decoding, round-to-nearest-even encoding ---- */

static inline float xposcheck_bits_to_float(uint32_t bits) {
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

static inline uint32_t xposcheck_float_to_bits(float f) {
  uint32_t bits;
  memcpy(&bits, &f, sizeof bits);
  return bits;
}

static inline float xposcheck_bf16_to_float(uint16_t h) {
  return xposcheck_bits_to_float((uint32_t)h << 16);
}

static inline uint16_t xposcheck_float_to_bf16(float f) {
  const uint32_t u = xposcheck_float_to_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x0040u); /* quiet NaN */
  return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

static inline float xposcheck_fp16_to_float(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  const uint32_t mantissa = h & 0x3FFu;
  if (exponent == 0x1Fu) return xposcheck_bits_to_float(sign | 0x7F800000u | (mantissa << 13));
  if (exponent == 0) { /* zero or subnormal: mantissa * 2^-24, exact in float */
    const float magnitude = (float)mantissa * 5.9604644775390625e-8f;
    return sign ? -magnitude : magnitude;
  }
  return xposcheck_bits_to_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

static inline uint16_t xposcheck_float_to_fp16(float f) {
  const uint32_t u = xposcheck_float_to_bits(f);
  const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return (uint16_t)(sign | 0x7E00u | ((a >> 13) & 0x3FFu)); /* NaN */
  if (a >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u); /* rounds past 65504: inf */
  if (a < 0x38800000u) { /* below 2^-14: subnormal, in units of 2^-24 */
    const uint32_t e = a >> 23, m = (a & 0x7FFFFFu) | 0x800000u;
    if (e < 102) return sign; /* below half of the smallest subnormal */
    const uint32_t shift = 126 - e; /* m * 2^(e - 150) / 2^-24 = m >> (126 - e) */
    const uint32_t kept = m >> shift, rest = m & ((1u << shift) - 1u), half = 1u << (shift - 1);
    return (uint16_t)(sign | (kept + (rest > half || (rest == half && (kept & 1u)))));
  }
  const uint32_t rounded = a + 0xFFFu + ((a >> 13) & 1u);
  return (uint16_t)(sign | ((rounded - 0x38000000u) >> 13));
}

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* XPOSCHECK_CANDIDATE_H */
