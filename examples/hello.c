/* GroupNorm from C: one call on an NCHW float32 tensor.
 * Build: cc hello.c $(pkg-config --cflags --libs groupnorm) -o hello */
#include <groupnorm/groupnorm.h>

#include <stdio.h>

enum { BATCH = 1, CHANNELS = 4, SPATIAL = 3, GROUPS = 2, N = BATCH * CHANNELS * SPATIAL };

int main(void) {
  float x[N], y[N];
  const float gamma[CHANNELS] = {1.0f, 1.0f, 2.0f, 2.0f}, beta[CHANNELS] = {0.0f, 0.0f, 0.5f, 0.5f};
  int i;
  for (i = 0; i < N; ++i) x[i] = (float)i;

  /* num_threads 0: all hardware threads. Errors return a status; nothing is written then. */
  if (gn_group_norm_f32(x, y, gamma, beta, BATCH, CHANNELS, SPATIAL, GROUPS, 1e-5f, 0) != GN_OK) {
    fprintf(stderr, "gn_group_norm_f32: %s\n", gn_last_error());
    return 1;
  }
  for (i = 0; i < N; ++i) printf("%.4f%c", y[i], i + 1 == N ? '\n' : ' ');

  /* A bad argument: a clear message, y untouched. */
  if (gn_group_norm_f32(x, y, gamma, beta, BATCH, CHANNELS, SPATIAL, 3, 1e-5f, 0) == GN_INVALID_ARGUMENT)
    printf("expected error: %s\n", gn_last_error());
  return 0;
}
