// Downstream C++ use of the installed package: a plan in a caller arena, the one-shot function, the C ABI.
#include <groupnorm/groupnorm.h>
#include <groupnorm/groupnorm.hpp>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include <oneapi/tbb/task_arena.h>

int main() {
  const std::vector<float> x = {1.0f, 2.0f, 3.0f, 4.0f};
  const std::array<double, 4> expected = {-1.3416, -0.4472, 0.4472, 1.3416};

  groupnorm::problem p;
  p.batch = 1;
  p.channels = 2;
  p.spatial = 2;
  p.num_groups = 1;
  const groupnorm::plan plan(p);
  tbb::task_arena arena(2);
  std::vector<float> y(4);
  plan.run(x, y, {}, {}, &arena);

  const std::array<std::size_t, 4> shape = {1, 2, 1, 2};
  const std::vector<float> y1 = groupnorm::group_normalization(x, shape, {}, {}, 1, 1e-5f);

  float y2[4];
  if (gn_group_norm_f32(x.data(), y2, nullptr, nullptr, 1, 2, 2, 1, 1e-5f, 0) != GN_OK) {
    std::fprintf(stderr, "gn_group_norm_f32 failed: %s\n", gn_last_error());
    return 1;
  }
  for (int i = 0; i < 4; ++i) {
    if (std::fabs(y[i] - expected[i]) > 1e-4 || std::memcmp(&y[i], &y1[i], 4) != 0 ||
        std::memcmp(&y[i], &y2[i], 4) != 0) {
      std::fprintf(stderr, "element %d: plan %g, one-shot %g, C %g, expected %g\n", i, y[i], y1[i], y2[i],
                   expected[i]);
      return 1;
    }
  }
  try {
    groupnorm::problem bad = p;
    bad.num_groups = 3;
    const groupnorm::plan never(bad);
    std::fprintf(stderr, "a bad problem did not throw\n");
    return 1;
  } catch (const std::invalid_argument& e) {
    std::printf("expected error: %s\n", e.what());
  }
  std::printf("C++ consumer ok: %g %g %g %g (isa %s)\n", y[0], y[1], y[2], y[3],
              groupnorm::to_string(plan.selected_isa()));
  return 0;
}
