// Internal: the buffers of one backward run, its validation, scratch layout and execution.
#pragma once

#include <cstddef>

#include "kernels/backward_kernels.hpp"
#include "plan/plan_state.hpp"
#include "schedule/schedule.hpp"

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

// Executes a validated backward run (nullptr arena: the current one). No heap allocation.
void execute_backward(const plan_state& s, const backward_buffers& b, tbb::task_arena* arena);

// Views of the scratch and the per-run constants shared by the NCHW and NHWC schedules.
struct backward_run {
  const plan_state& s;
  const backward_buffers& b;
  const backward_table& k;
  double* channel_sums;  // [2 * (n * C + c) + {0, 1}]
  double* group_stats;   // [4 * pair + {mean, rstd, sum(g), sum(g xhat)}]
};

// The float mean and rstd of sample n's groups, recomputed exactly as the forward computes them.
void recompute_stats_nhwc(const backward_run& r, std::size_t n);
// What finish_slice reads to recompute statistics: x only (it writes nothing: mean / rstd are absent).
inline run_buffers stats_source(const backward_run& r) {
  run_buffers b;
  b.x = r.b.x;
  return b;
}
// v rounded to float (the precision of saved statistics), as a double.
double rounded_to_float(double v) noexcept;
// Group sums of one slice from its channels' sums.
void finish_group(const backward_run& r, std::size_t pair);

// Per-channel constants of channels [c0, c0 + width) of sample n (width <= kBackwardLaneTile), on the
// caller's stack; the dx coefficients need the channels' group sums.
struct lane_tile {
  float mean[kBackwardLaneTile], rstd[kBackwardLaneTile], scale[kBackwardLaneTile], beta[kBackwardLaneTile];
  float a[kBackwardLaneTile], b[kBackwardLaneTile], c[kBackwardLaneTile];
  lane_params params() const { return {mean, rstd, scale, beta}; }
  lane_coefs coefs() const { return {a, b, c}; }
};
void fill_tile(const backward_run& r, std::size_t n, std::size_t c0, std::size_t width, bool with_coefs,
               lane_tile& t);
// dgamma / dbeta: per channel, the samples' sums added in sample order.
void reduce_parameter_grads(const backward_run& r);

void execute_backward_nhwc(const backward_run& r, tbb::task_arena* arena, int concurrency);

}  // namespace groupnorm::detail
