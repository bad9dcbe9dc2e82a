/* Downstream C use of the installed package: groupnorm.h compiles as C99 and the ABI works. */
#include <groupnorm/groupnorm.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  const float x[4] = {1.0f, 2.0f, 3.0f, 4.0f};
  const double expected[4] = {-1.3416, -0.4472, 0.4472, 1.3416};
  float y[4] = {0, 0, 0, 0};
  float mean[1] = {0}, rstd[1] = {0};
  gn_options options;
  int i;

  if (gn_group_norm_f32(x, y, NULL, NULL, 1, 2, 2, 1, 1e-5f, 1) != GN_OK) {
    fprintf(stderr, "gn_group_norm_f32 failed: %s\n", gn_last_error());
    return 1;
  }
  for (i = 0; i < 4; ++i) {
    if (fabs(y[i] - expected[i]) > 1e-4) {
      fprintf(stderr, "element %d: got %g, expected %g\n", i, y[i], expected[i]);
      return 1;
    }
  }
  if (strcmp(gn_last_error(), "") != 0) return 1;

  if (gn_group_norm_f32(x, y, NULL, NULL, 1, 2, 2, 3, 1e-5f, 1) != GN_INVALID_ARGUMENT ||
      strstr(gn_last_error(), "num_groups") == NULL) {
    fprintf(stderr, "bad num_groups not reported: %s\n", gn_last_error());
    return 1;
  }

  gn_options_init(&options);
  options.mean = mean;
  options.rstd = rstd;
  if (gn_group_norm_ex(x, y, NULL, NULL, 1, 2, 2, 1, 1e-5f, &options) != GN_OK ||
      fabs(mean[0] - 2.5) > 1e-6 || fabs(rstd[0] - 1.0 / sqrt(1.25 + 1e-5)) > 1e-5) {
    fprintf(stderr, "gn_group_norm_ex: mean %g rstd %g (%s)\n", mean[0], rstd[0], gn_last_error());
    return 1;
  }
  printf("C consumer ok: %g %g %g %g, mean %g, rstd %g\n", y[0], y[1], y[2], y[3], mean[0], rstd[0]);
  return 0;
}
