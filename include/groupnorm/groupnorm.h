/* groupnorm — deterministic Group Normalization for CPUs (C ABI).
 *
 * Conventions: every entry point returns a gn_status and never lets an exception escape; memory is owned by
 * the caller; gn_last_error() describes any error. Every argument is checked before the first write, so after
 * GN_INVALID_ARGUMENT (and after GN_OUT_OF_MEMORY from creating an arena) y, sum, mean, rstd, and x when in
 * place are untouched. A GN_OUT_OF_MEMORY from oneTBB's task allocation during a parallel run may come after
 * part of them was written; they are then unspecified. y == x means in place; any other overlap of an output
 * with an input is an error. Results are bitwise identical for every num_threads. */
#ifndef GROUPNORM_GROUPNORM_H
#define GROUPNORM_GROUPNORM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gn_status {
  GN_OK = 0,
  GN_INVALID_ARGUMENT = 1,
  GN_OUT_OF_MEMORY = 2,
  GN_INTERNAL_ERROR = 3
} gn_status;

/* NCHW float32 GroupNorm. x and y hold batch * channels * spatial floats; gamma / beta hold `channels` floats
 * or are NULL (then 1 and 0). num_threads: 0 = all hardware threads, n > 0 = at most n (arenas are cached per
 * count, not rebuilt per call), n < 0 is an error. Never throws. */
gn_status gn_group_norm_f32(const float* x, float* y, const float* gamma, const float* beta, size_t batch,
                            size_t channels, size_t spatial, size_t num_groups, float epsilon,
                            int num_threads);

/* Message of the last failed call on this thread ("" after a success); valid until the next call on this
 * thread. */
const char* gn_last_error(void);

typedef enum gn_layout { GN_LAYOUT_NCHW = 0, GN_LAYOUT_NHWC = 1 } gn_layout;
typedef enum gn_dtype { GN_DTYPE_F32 = 0, GN_DTYPE_F16 = 1, GN_DTYPE_BF16 = 2 } gn_dtype;
typedef enum gn_activation {
  GN_ACTIVATION_NONE = 0,
  GN_ACTIVATION_RELU = 1,
  GN_ACTIVATION_SILU = 2,
  GN_ACTIVATION_GELU = 3 /* erf form */
} gn_activation;

/* Options of gn_group_norm_ex. Initialize with gn_options_init(), which sets struct_size. Later versions only
 * append fields, and a zero in a new field always means the behaviour of the versions before it. struct_size
 * (the Linux copy_struct_from_user convention):
 *  - sizeof(gn_options): this header's struct.
 *  - offsetof(gn_options, f) for a field f after struct_size (8, 12, 16, 24, 32, 40, 48 or 56 on LP64): a
 *    caller compiled against an older header whose struct ended just before f; f and the fields after it keep
 *    their defaults. Any other smaller size ends inside a field and is an error.
 *  - larger than sizeof(gn_options) (a caller compiled against a newer header), at most 4096: accepted only
 *    when every byte past sizeof(gn_options) is zero, i.e. the fields this library version does not know are
 *    left at their defaults; otherwise GN_INVALID_ARGUMENT, whose message names struct_size. */
typedef struct gn_options {
  size_t struct_size; /* sizeof(gn_options) as the caller compiled it */
  gn_layout layout;   /* default GN_LAYOUT_NCHW */
  gn_dtype dtype; /* storage of x, y, residual, sum; default GN_DTYPE_F32 (16-bit types as uint16_t bits) */
  gn_activation activation; /* applied after the affine; default none */
  const void* residual;     /* optional: normalize x + residual (same shape and dtype as x) */
  void* sum;                /* optional (needs residual): receives x + residual */
  float* mean;              /* optional: batch * num_groups means */
  float* rstd;              /* optional: batch * num_groups values 1 / sqrt(var + epsilon) */
  int num_threads;          /* as in gn_group_norm_f32 */
} gn_options;

/* Fills *options with the defaults and sets struct_size. */
void gn_options_init(gn_options* options);

/* GroupNorm with layout, storage type, fused residual / activation and saved statistics. options may be NULL
 * (defaults). */
gn_status gn_group_norm_ex(const void* x, void* y, const float* gamma, const float* beta, size_t batch,
                           size_t channels, size_t spatial, size_t num_groups, float epsilon,
                           const gn_options* options);

#ifdef __cplusplus
}
#endif

#endif /* GROUPNORM_GROUPNORM_H */
