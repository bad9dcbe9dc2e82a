/* A C program (C11, no C++) that runs every option of the C plan API: layout x dtype x activation x
 * residual x gamma/beta x saved statistics x in place, each against a float64 reference, with the same bits
 * as the one-shot gn_group_norm_ex and for every arena. Exit 0 = all passed; failures are printed. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "groupnorm/groupnorm.h"

enum {
  BATCH = 2,
  CHANNELS = 6,
  SPATIAL = 10,
  GROUPS = 3,
  N = BATCH * CHANNELS * SPATIAL,
  PAIRS = BATCH * GROUPS
};

static int failures = 0;
#define EXPECT(cond, ...)                                           \
  do {                                                              \
    if (!(cond)) {                                                  \
      if (failures++ < 20) {                                        \
        fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #cond);  \
        fprintf(stderr, __VA_ARGS__);                               \
        fprintf(stderr, " (gn_last_error: %s)\n", gn_last_error()); \
      }                                                             \
    }                                                               \
  } while (0)

/* ---- 16-bit storage, as bits: round to nearest even (finite test data only) ---- */
static float bits_to_float(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}
static uint32_t float_to_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
static uint16_t to_bf16(float f) {
  const uint32_t u = float_to_bits(f);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
static float from_bf16(uint16_t h) {
  return bits_to_float((uint32_t)h << 16);
}
static float from_f16(uint16_t h) {
  const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  const float v = e == 0 ? ldexpf((float)m, -24) : ldexpf((float)(m | 0x400), e - 25);
  return (h & 0x8000) ? -v : v;
}
static uint16_t to_f16(float f) { /* exhaustive search-free: via nearest of the two neighbours */
  const float a = fabsf(f);
  uint16_t lo = 0, hi = 0x7bff;
  while (lo < hi) { /* largest h with from_f16(h) <= a */
    const uint16_t mid = (uint16_t)((lo + hi + 1) / 2);
    if (from_f16(mid) <= a)
      lo = mid;
    else
      hi = (uint16_t)(mid - 1);
  }
  uint16_t h = lo;
  if (h < 0x7bff) {
    const float d0 = a - from_f16(h), d1 = from_f16((uint16_t)(h + 1)) - a;
    if (d1 < d0 || (d1 == d0 && (h & 1))) ++h;
  }
  return (uint16_t)(h | (f < 0 ? 0x8000 : 0));
}

static size_t elem_size(gn_dtype d) {
  return d == GN_DTYPE_F32 ? 4 : 2;
}
static float load(const void* p, size_t i, gn_dtype d) {
  if (d == GN_DTYPE_F32) return ((const float*)p)[i];
  const uint16_t h = ((const uint16_t*)p)[i];
  return d == GN_DTYPE_F16 ? from_f16(h) : from_bf16(h);
}
static void store(void* p, size_t i, gn_dtype d, float v) {
  if (d == GN_DTYPE_F32)
    ((float*)p)[i] = v;
  else
    ((uint16_t*)p)[i] = d == GN_DTYPE_F16 ? to_f16(v) : to_bf16(v);
}
/* Spacing of the storage type at |v| (normal range; the subnormal spacing below it). */
static double storage_ulp(double v, gn_dtype d) {
  const int mant = d == GN_DTYPE_F32 ? 23 : d == GN_DTYPE_F16 ? 10 : 7;
  const int emin = d == GN_DTYPE_F32 ? -126 : d == GN_DTYPE_F16 ? -14 : -126;
  int e;
  frexp(fabs(v), &e);
  return ldexp(1.0, (e - 1 < emin ? emin : e - 1) - mant);
}

static double activate(gn_activation a, double z) {
  switch (a) {
    case GN_ACTIVATION_RELU:
      return z > 0 ? z : 0;
    case GN_ACTIVATION_SILU:
      return z / (1 + exp(-z));
    case GN_ACTIVATION_GELU:
      return 0.5 * z * erfc(-z / sqrt(2.0));
    default:
      return z;
  }
}

/* Element (n, c, s) of a tensor in `layout`. */
static size_t at(gn_layout layout, size_t n, size_t c, size_t s) {
  return layout == GN_LAYOUT_NCHW ? (n * CHANNELS + c) * SPATIAL + s : (n * SPATIAL + s) * CHANNELS + c;
}

typedef struct {
  gn_layout layout;
  gn_dtype dtype;
  gn_activation activation;
  int residual, affine, stats, in_place;
} config;

static void check_one(const gn_plan* plan, const config* k, gn_arena* arenas[3]) {
  const size_t es = elem_size(k->dtype);
  _Alignas(64) unsigned char x[N * 4], r[N * 4], y[N * 4], sum[N * 4], y1[N * 4], sum1[N * 4];
  float gamma[CHANNELS], beta[CHANNELS], mean[PAIRS], rstd[PAIRS], mean1[PAIRS], rstd1[PAIRS];
  for (size_t i = 0; i < N; ++i) {
    store(x, i, k->dtype, (float)(sin(0.37 * (double)i) * 3.0 + (double)(i % 7) * 0.25 - 1.0));
    store(r, i, k->dtype, (float)cos(0.91 * (double)i));
  }
  for (size_t c = 0; c < CHANNELS; ++c)
    gamma[c] = 0.5f + 0.25f * (float)c, beta[c] = -0.75f + 0.3f * (float)c;

  gn_tensors t;
  gn_tensors_init(&t);
  memcpy(y, x, N * es); /* in place: y starts as x */
  t.x = k->in_place ? (const void*)y : (const void*)x;
  t.y = y;
  if (k->affine) t.gamma = gamma, t.beta = beta;
  if (k->residual) t.residual = r, t.sum = sum;
  if (k->stats) t.mean = mean, t.rstd = rstd;
  EXPECT(gn_plan_run(plan, &t, NULL) == GN_OK, "plan run");

  /* float64 reference on the decoded inputs */
  double worst = 0;
  for (size_t n = 0; n < BATCH; ++n)
    for (size_t g = 0; g < GROUPS; ++g) {
      const size_t cpg = CHANNELS / GROUPS;
      double s1 = 0, s2 = 0;
      for (size_t c = g * cpg; c < (g + 1) * cpg; ++c)
        for (size_t s = 0; s < SPATIAL; ++s) {
          const size_t i = at(k->layout, n, c, s);
          s1 += (double)load(x, i, k->dtype) + (k->residual ? (double)load(r, i, k->dtype) : 0.0);
        }
      const double m = s1 / (double)(cpg * SPATIAL);
      for (size_t c = g * cpg; c < (g + 1) * cpg; ++c)
        for (size_t s = 0; s < SPATIAL; ++s) {
          const size_t i = at(k->layout, n, c, s);
          const double v = (double)load(x, i, k->dtype) + (k->residual ? (double)load(r, i, k->dtype) : 0.0);
          s2 += (v - m) * (v - m);
        }
      const double rs = 1.0 / sqrt(s2 / (double)(cpg * SPATIAL) + 1e-5);
      if (k->stats) {
        /* saved statistics: float of the double merge, 1e-5 relative (test_features.cpp's bound) */
        EXPECT(fabs(mean[n * GROUPS + g] - m) <= 1e-5 * (1 + fabs(m)), "mean %zu", n * GROUPS + g);
        EXPECT(fabs(rstd[n * GROUPS + g] - rs) <= 1e-5 * rs, "rstd %zu", n * GROUPS + g);
      }
      for (size_t c = g * cpg; c < (g + 1) * cpg; ++c)
        for (size_t s = 0; s < SPATIAL; ++s) {
          const size_t i = at(k->layout, n, c, s);
          const double xv = (double)load(x, i, k->dtype),
                       rv = k->residual ? (double)load(r, i, k->dtype) : 0.0;
          const double z = (k->affine ? gamma[c] : 1.0) * (xv + rv - m) * rs + (k->affine ? beta[c] : 0.0);
          const double want = activate(k->activation, z);
          /* 1e-5 (1 + |z|): the suite's GroupNorm bound (tests/core/test_reference.cpp), times 1.2 for the
           * activations' slope (GELU's is at most 1.13); one storage ulp: the activation's own float error
           * (<= 1 ulp, test_activation.cpp) and the 16-bit rounding (1/2 ulp); 1e-6: outputs near 0, where
           * the fp32 pipeline's absolute error exceeds a 16-bit subnormal ulp (test_features.cpp). */
          const double tol = 1.2e-5 * (1 + fabs(z)) + storage_ulp(want, k->dtype) + 1e-6;
          const double err = fabs((double)load(y, i, k->dtype) - want);
          if (err > worst) worst = err;
          EXPECT(err <= tol, "y[%zu] = %g, want %g (tol %g)", i, (double)load(y, i, k->dtype), want, tol);
          if (k->residual) /* sum = x + r rounded to the storage type */
            EXPECT(fabs((double)load(sum, i, k->dtype) - (xv + rv)) <= 0.5 * storage_ulp(xv + rv, k->dtype),
                   "sum[%zu]", i);
        }
    }

  /* Same bits from the one-shot entry point and from every arena. */
  gn_options o;
  gn_options_init(&o);
  o.layout = k->layout;
  o.dtype = k->dtype;
  o.activation = k->activation;
  if (k->residual) o.residual = r, o.sum = sum1;
  if (k->stats) o.mean = mean1, o.rstd = rstd1;
  EXPECT(gn_group_norm_ex(x, y1, k->affine ? gamma : NULL, k->affine ? beta : NULL, BATCH, CHANNELS, SPATIAL,
                          GROUPS, 1e-5f, &o) == GN_OK,
         "one-shot");
  EXPECT(memcmp(y, y1, N * es) == 0, "one-shot bits differ from gn_plan_run");
  if (k->stats)
    EXPECT(memcmp(mean, mean1, sizeof mean) == 0 && memcmp(rstd, rstd1, sizeof rstd) == 0, "stats bits");
  for (int a = 0; a < 3; ++a) {
    memset(y1, 0, sizeof y1);
    t.x = x;
    t.y = y1;
    if (k->residual) t.sum = sum1;
    EXPECT(gn_plan_run(plan, &t, arenas[a]) == GN_OK, "arena %d", a);
    EXPECT(memcmp(y, y1, N * es) == 0, "arena %d bits differ", a);
  }
}

int main(void) {
  gn_arena* arenas[3];
  if (gn_arena_create(1, &arenas[0]) != GN_OK || gn_arena_create(0, &arenas[1]) != GN_OK ||
      gn_arena_create(1 << 20, &arenas[2]) != GN_OK) { /* above the hardware: capped */
    fprintf(stderr, "gn_arena_create: %s\n", gn_last_error());
    return 1;
  }
  int runs = 0;
  for (int layout = 0; layout < 2; ++layout)
    for (int dtype = 0; dtype < 3; ++dtype)
      for (int act = 0; act < 4; ++act)
        for (int residual = 0; residual < 2; ++residual) {
          gn_problem p;
          gn_problem_init(&p);
          p.batch = BATCH, p.channels = CHANNELS, p.spatial = SPATIAL, p.num_groups = GROUPS;
          p.layout = (gn_layout)layout, p.dtype = (gn_dtype)dtype, p.activation = (gn_activation)act;
          p.residual = residual;
          gn_plan* plan = NULL;
          EXPECT(gn_plan_create(&p, &plan) == GN_OK, "create");
          if (plan == NULL) continue;
          for (int affine = 0; affine < 2; ++affine)
            for (int stats = 0; stats < 2; ++stats)
              for (int in_place = 0; in_place < 2; ++in_place) {
                const config k = {(gn_layout)layout, (gn_dtype)dtype, (gn_activation)act,
                                  residual,          affine,          stats,
                                  in_place};
                check_one(plan, &k, arenas);
                ++runs;
              }
          gn_plan_destroy(plan);
        }
  for (int a = 0; a < 3; ++a) gn_arena_destroy(arenas[a]);
  printf("%d option combinations through gn_plan_run, %d failures\n", runs, failures);
  return failures == 0 ? 0 : 1;
}
