// GroupNorm from C++: validate a problem once (a plan), then run it on a tensor. Built with find_package.
#include <groupnorm/groupnorm.hpp>

#include <cstdio>
#include <vector>

int main() {
  groupnorm::problem p;  // NCHW float32 by default
  p.batch = 1;
  p.channels = 32;
  p.spatial = 8 * 8;
  p.num_groups = 8;
  const groupnorm::plan plan(p);  // throws std::invalid_argument naming a bad field

  std::vector<float> x(plan.element_count()), y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 17) - 8.0f;
  const std::vector<float> gamma(p.channels, 1.0f), beta(p.channels, 0.0f);

  plan.run(x, y, gamma, beta);  // no allocation; the bits do not depend on the thread count
  std::printf("y[0..3] = %.4f %.4f %.4f %.4f (%s kernels)\n", y[0], y[1], y[2], y[3],
              groupnorm::to_string(plan.selected_isa()));
  return 0;
}
