// The backward pass's plan stage: the buffers of one run, its scratch size and its validation.
#pragma once

#include <cstddef>

#include "plan/plan_state.hpp"

namespace groupnorm::detail {

struct backward_buffers {
  const void* x = nullptr;
  const void* dy = nullptr;
  const float* gamma = nullptr;
  const float* beta = nullptr;
  const float* mean = nullptr;
  const float* rstd = nullptr;
  void* dx = nullptr;
  float* dgamma = nullptr;
  float* dbeta = nullptr;
  double* workspace = nullptr;
};

// Element counts of the buffers, 0 = absent.
struct backward_sizes {
  std::size_t x, dy, gamma, beta, mean, rstd, dx, dgamma, dbeta, workspace;
};

// Scratch of a run, in doubles: per (sample, channel) sum(dz) and sum(dz * xhat) (2 * batch * channels),
// then per (sample, group) mean and rstd and the two group sums (4 * batch * num_groups). Up to
// kBackwardStackDoubles it lives on the calling thread's stack (64 KiB), beyond in the caller's workspace.
inline constexpr std::size_t kBackwardStackDoubles = 8192;
std::size_t backward_scratch_doubles(const plan_state& s) noexcept;
// What the caller must provide: 0 when the scratch fits the stack bound.
std::size_t backward_workspace_doubles(const plan_state& s) noexcept;

// Checks sizes, presence and overlaps; throws groupnorm::invalid_argument before anything is written.
void validate_backward(const plan_state& s, const backward_buffers& b, const backward_sizes& n);

}  // namespace groupnorm::detail
