// The backward pass through a plan: the forward saves its statistics, the backward takes them and returns
// dx, dgamma and dbeta (docs/backward.md).
#include <cstdio>
#include <vector>

#include <groupnorm/groupnorm.hpp>

int main() {
  groupnorm::problem p;
  p.batch = 2;
  p.channels = 8;
  p.spatial = 16;  // a 4x4 image
  p.num_groups = 4;
  const groupnorm::plan pl(p);
  const std::size_t n = pl.element_count(), pairs = p.batch * p.num_groups;
  std::vector<float> x(n), y(n), dy(n), gamma(p.channels, 1.5f), beta(p.channels, 0.25f);
  for (std::size_t i = 0; i < n; ++i)
    x[i] = static_cast<float>(i % 7) - 3.0f, dy[i] = static_cast<float>(i % 5) * 0.1f;
  std::vector<float> mean(pairs), rstd(pairs);
  pl.run(groupnorm::tensors<float>{.x = x, .y = y, .gamma = gamma, .beta = beta, .mean = mean, .rstd = rstd});

  std::vector<float> dx(n), dgamma(p.channels), dbeta(p.channels);
  std::vector<double> workspace(pl.backward_workspace_size());  // 0 here: the scratch fits on the stack
  pl.run_backward(groupnorm::backward_tensors<float>{.x = x,
                                                     .dy = dy,
                                                     .gamma = gamma,
                                                     .beta = beta,
                                                     .mean = mean,
                                                     .rstd = rstd,
                                                     .dx = dx,
                                                     .dgamma = dgamma,
                                                     .dbeta = dbeta,
                                                     .workspace = workspace});
  std::printf("dx[0..3] = %.6f %.6f %.6f %.6f\n", dx[0], dx[1], dx[2], dx[3]);
  std::printf("dgamma[0] = %.6f, dbeta[0] = %.6f\n", dgamma[0], dbeta[0]);
  return 0;
}
