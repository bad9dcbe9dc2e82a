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
 * or are NULL (then 1 and 0). num_threads: 0 = all hardware threads, n > 0 = at most n (an arena per count,
 * created on first use and kept: no allocation or thread creation once it exists), n < 0 is an error. Never
 * throws. */
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

/* ---- Plans and arenas: validate once, run many times ----------------------------------------------------
 *
 *   gn_problem p;  gn_problem_init(&p);
 *   p.batch = 1; p.channels = 32; p.spatial = 64; p.num_groups = 8;
 *   gn_plan* plan;  gn_plan_create(&p, &plan);          (checks every field once)
 *   gn_tensors t;  gn_tensors_init(&t);  t.x = x;  t.y = y;
 *   gn_plan_run(plan, &t, NULL);                          (as often as needed, from any thread)
 *   gn_plan_destroy(plan);
 *
 * struct_size of gn_problem and gn_tensors follows the rules of gn_options: sizeof as compiled, the offset of
 * a field after struct_size (an older header's struct: the fields from there keep their defaults), or a
 * larger size, at most 4096, whose bytes past this header's struct are all zero. Any other size is
 * GN_INVALID_ARGUMENT naming struct_size. On any error the outputs (*out, y, sum, mean, rstd) are untouched.
 */

/* What to normalize; set by gn_problem_init, then checked once by gn_plan_create. */
typedef struct gn_problem {
  size_t struct_size;       /* sizeof(gn_problem) as the caller compiled it */
  size_t batch;             /* default 1 */
  size_t channels;          /* default 0: must be set */
  size_t spatial;           /* product of the spatial dims (H*W, D*H*W, or 1); default 1 */
  size_t num_groups;        /* must divide channels; default 0: must be set */
  float epsilon;            /* finite, >= 0; default 1e-5 */
  gn_layout layout;         /* default GN_LAYOUT_NCHW */
  gn_dtype dtype;           /* storage of x, y, residual, sum; default GN_DTYPE_F32 */
  gn_activation activation; /* applied after the affine; default none */
  int residual;             /* non-zero: every run passes a residual (normalize x + residual); default 0 */
} gn_problem;

/* The buffers of one run; gn_tensors_init sets struct_size and NULLs. A non-null pointer stands for a
 * buffer of the size the plan expects; NULL means absent (gamma = 1, beta = 0, no sum / mean / rstd). */
typedef struct gn_tensors {
  size_t struct_size;   /* sizeof(gn_tensors) as the caller compiled it */
  const void* x;        /* batch * channels * spatial elements of the plan's dtype */
  void* y;              /* same size as x; y == x runs in place */
  const float* gamma;   /* channels, or NULL */
  const float* beta;    /* channels, or NULL */
  const void* residual; /* same size as x: required iff the plan has residual, else NULL */
  void* sum;            /* optional (needs residual): receives x + residual */
  float* mean;          /* optional: batch * num_groups means */
  float* rstd;          /* optional: batch * num_groups values 1 / sqrt(var + epsilon) */
} gn_tensors;

/* A validated problem with its fixed schedule: immutable, usable from any number of threads at once. */
typedef struct gn_plan gn_plan;
/* A oneTBB task arena of a fixed thread count. */
typedef struct gn_arena gn_arena;

/* Fill *p / *t with the defaults and set struct_size. NULL is a no-op. */
void gn_problem_init(gn_problem* p);
void gn_tensors_init(gn_tensors* t);

/* Checks *p (the messages of gn_group_norm_ex) and stores a new plan in *out. Allocates; may take tens of
 * microseconds on the first call of a process (CPU detection). */
gn_status gn_plan_create(const gn_problem* p, gn_plan** out);

/* Runs the plan on t. arena NULL: the calling thread's current arena (the default arena of all hardware
 * threads unless the caller is inside a tbb::task_arena). A run of fewer than 32768 elements, or on an arena
 * of one thread, stays on the calling thread. Allocates nothing and creates no thread. */
gn_status gn_plan_run(const gn_plan* plan, const gn_tensors* t, gn_arena* arena);

/* Frees the plan; NULL is a no-op. No run of it may be in progress. */
void gn_plan_destroy(gn_plan* plan);

/* Stores in *out an arena of num_threads threads: 0 = all hardware threads; a count above the hardware is
 * capped at it; negative is an error. Worker threads start on the first parallel run. */
gn_status gn_arena_create(int num_threads, gn_arena** out);

/* Frees the arena; NULL is a no-op. No run in it may be in progress. */
void gn_arena_destroy(gn_arena* arena);

/* ---- Backward pass (docs/backward.md) ------------------------------------------------------------------
 * dx, dgamma and dbeta of the forward above, bitwise identical for every num_threads and kernel family. Every
 * argument is checked before the first write; after an error nothing was written. Scratch beyond the stack
 * bound (2 * batch * (channels + 2 * num_groups) doubles > 8192) is allocated per call. */

/* NCHW float32. mean/rstd: the forward's saved statistics (batch x num_groups), or both NULL to recompute
   them from x and epsilon. gamma NULL = 1. Any of dx, dgamma, dbeta may be NULL (not computed), not all.
   dx may equal dy (in place); any other overlap is an error. */
gn_status gn_group_norm_backward_f32(const float* x, const float* dy, const float* gamma, const float* mean,
                                     const float* rstd, float* dx, float* dgamma, float* dbeta, size_t batch,
                                     size_t channels, size_t spatial, size_t num_groups, float epsilon,
                                     int num_threads);

/* Every layout, dtype and fused activation of the forward (options as in gn_group_norm_ex; its residual, sum,
   mean and rstd fields must be NULL here). beta is needed to recompute z when an activation is fused.
   x, dy and dx use the storage dtype; gamma, beta, mean, rstd, dgamma and dbeta are float. For a residual
   forward, pass its sum (x + residual) as x: dx is then the gradient of both x and residual. */
gn_status gn_group_norm_backward_ex(const void* x, const void* dy, const float* gamma, const float* beta,
                                    const float* mean, const float* rstd, void* dx, float* dgamma,
                                    float* dbeta, size_t batch, size_t channels, size_t spatial,
                                    size_t num_groups, float epsilon, const gn_options* options);

/* The backward on a prepared plan: the buffers of one run (gn_backward_tensors_init sets struct_size and
 * NULLs, struct_size versioned as gn_tensors). x, dy and dx use the plan's dtype and layout. As in
 * gn_group_norm_backward_ex: mean / rstd both NULL = recomputed from x; gamma NULL = 1; beta is read only
 * with a fused activation; any of dx, dgamma, dbeta may be NULL, not all; dx may equal dy; for a residual
 * forward pass its sum as x. workspace: gn_plan_backward_workspace_size(plan) doubles, or NULL when that is
 * 0. */
typedef struct gn_backward_tensors {
  size_t struct_size; /* sizeof(gn_backward_tensors) as the caller compiled it */
  const void* x;      /* the forward's input: batch * channels * spatial elements */
  const void* dy;     /* gradient of the forward's output, same size */
  const float* gamma; /* channels, or NULL */
  const float* beta;  /* channels, or NULL */
  const float* mean;  /* the forward's saved statistics (batch * num_groups each), or both NULL */
  const float* rstd;
  void* dx;          /* optional, same size as x */
  float* dgamma;     /* optional, channels */
  float* dbeta;      /* optional, channels */
  double* workspace; /* gn_plan_backward_workspace_size(plan) doubles when that is non-zero */
} gn_backward_tensors;

void gn_backward_tensors_init(gn_backward_tensors* t);

/* Doubles of scratch gn_plan_run_backward needs from the caller: 0 when 2 * batch * (channels + 2 *
 * num_groups) <= 8192 (it then lives on the stack), else that count. 0 for a NULL plan. */
size_t gn_plan_backward_workspace_size(const gn_plan* plan);

/* dx, dgamma, dbeta of the plan's forward (docs/backward.md), bitwise identical for every arena size and
 * kernel family. arena NULL: as gn_plan_run. Validates everything before the first write; allocates nothing
 * and creates no thread. */
gn_status gn_plan_run_backward(const gn_plan* plan, const gn_backward_tensors* t, gn_arena* arena);

#ifdef __cplusplus
}
#endif

#endif /* GROUPNORM_GROUPNORM_H */
