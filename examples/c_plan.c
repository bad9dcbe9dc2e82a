/* The C plan API: validate a GroupNorm problem once, then run it on new data as often as needed, from any
 * thread, without allocating. Build: cc c_plan.c $(pkg-config --cflags --libs groupnorm) */
#include <stdio.h>

#include "groupnorm/groupnorm.h"

enum { BATCH = 1, CHANNELS = 32, SPATIAL = 8 * 8, GROUPS = 8, N = BATCH * CHANNELS * SPATIAL };

int main(void) {
  static float x[N], skip[N], y[N], gamma[CHANNELS], beta[CHANNELS], mean[BATCH * GROUPS],
      rstd[BATCH * GROUPS];
  for (int i = 0; i < N; ++i) x[i] = (float)(i % 17) - 8.0f, skip[i] = 0.5f;
  for (int c = 0; c < CHANNELS; ++c) gamma[c] = 1.0f, beta[c] = 0.0f;

  /* The problem: NCHW float32, normalize x + skip, SiLU fused after the affine. */
  gn_problem p;
  gn_problem_init(&p);
  p.batch = BATCH;
  p.channels = CHANNELS;
  p.spatial = SPATIAL;
  p.num_groups = GROUPS;
  p.activation = GN_ACTIVATION_SILU;
  p.residual = 1;
  gn_plan* plan = NULL;
  if (gn_plan_create(&p, &plan) != GN_OK) {
    fprintf(stderr, "gn_plan_create: %s\n", gn_last_error());
    return 1;
  }
  /* An arena of 2 threads (0 = all hardware threads); NULL runs in the calling thread's arena. */
  gn_arena* arena = NULL;
  if (gn_arena_create(2, &arena) != GN_OK) {
    fprintf(stderr, "gn_arena_create: %s\n", gn_last_error());
    gn_plan_destroy(plan);
    return 1;
  }

  gn_tensors t;
  gn_tensors_init(&t);
  t.x = x;
  t.y = y;
  t.gamma = gamma;
  t.beta = beta;
  t.residual = skip;
  t.mean = mean; /* optional saved statistics */
  t.rstd = rstd;
  for (int step = 0; step < 3; ++step) { /* each run: no allocation, no thread creation */
    if (gn_plan_run(plan, &t, arena) != GN_OK) {
      fprintf(stderr, "gn_plan_run: %s\n", gn_last_error());
      break;
    }
  }
  printf("y[0] = %.6f, mean[0] = %.6f, rstd[0] = %.6f\n", y[0], mean[0], rstd[0]);

  /* Errors name the argument and write nothing: this run lacks the residual the plan requires. */
  t.residual = NULL;
  if (gn_plan_run(plan, &t, arena) == GN_INVALID_ARGUMENT) printf("error: %s\n", gn_last_error());

  gn_arena_destroy(arena);
  gn_plan_destroy(plan);
  return 0;
}
