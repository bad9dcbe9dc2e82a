// The backward pass's schedule stage: its entry point and what the NCHW and NHWC backward schedules share
// (lib/schedule/backward*.cpp).
#pragma once

#include <cstddef>

#include <oneapi/tbb/task_arena.h>

#include "kernels/backward_kernels.hpp"
#include "plan/backward.hpp"
#include "schedule/schedule.hpp"

namespace groupnorm::detail {

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
// Stores a slice's statistics as the forward saves them (rounded to float), so recomputed and given
// statistics give the same bits.
void store_stats(const backward_run& r, std::size_t pair, const moments& m);
// The first channel of a (sample, group) slice.
inline std::size_t first_channel(const backward_run& r, std::size_t pair) {
  return (pair % r.s.desc.num_groups) * r.s.channels_per_group;
}
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

void execute_backward_nchw(const backward_run& r, tbb::task_arena* arena, int concurrency);
void execute_backward_nhwc(const backward_run& r, tbb::task_arena* arena, int concurrency);

}  // namespace groupnorm::detail
