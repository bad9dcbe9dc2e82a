// Maps the backward pass onto the arena. The reduction tree is fixed by the shape: per (sample, channel) the
// kernel's block sums added in block order; per (sample, group) its channels in channel order; per channel
// (dgamma, dbeta) its samples in sample order. Tasks only decide who computes a (sample, channel) sum, so
// every thread count gives the same bits. dx is element-wise once its group's sums are known. This file holds
// the entry point and the pieces both layouts' schedules use.
#include <algorithm>

#include <oneapi/tbb/task_arena.h>

#include "kernels/dispatch.hpp"
#include "schedule/backward.hpp"

namespace groupnorm::detail {

void store_stats(const backward_run& r, std::size_t pair, const moments& m) {
  const slice_stats st = finish_slice(r.s, stats_source(r), pair, m);
  r.group_stats[4 * pair] = rounded_to_float(st.mean);
  r.group_stats[4 * pair + 1] = rounded_to_float(st.rstd);
}

// Out of line on purpose: GCC 12 -O3's SLP vectorizer drops the rounding of two adjacent
// `double = static_cast<float>(double)` stores (it merges them into one 16-byte move of the doubles).
[[gnu::noinline]] double rounded_to_float(double v) noexcept {
  return static_cast<float>(v);
}

void finish_group(const backward_run& r, std::size_t pair) {
  const std::size_t n = pair / r.s.desc.num_groups, C = r.s.desc.channels;
  const std::size_t c0 = first_channel(r, pair);
  double sum_g = 0, sum_gx = 0;
  for (std::size_t c = c0; c < c0 + r.s.channels_per_group; ++c) {
    const double gamma = r.b.gamma ? r.b.gamma[c] : 1.0;
    sum_g += gamma * r.channel_sums[2 * (n * C + c)];
    sum_gx += gamma * r.channel_sums[2 * (n * C + c) + 1];
  }
  r.group_stats[4 * pair + 2] = sum_g;
  r.group_stats[4 * pair + 3] = sum_gx;
}

void fill_tile(const backward_run& r, std::size_t n, std::size_t c0, std::size_t width, bool with_coefs,
               lane_tile& t) {
  const std::size_t G = r.s.desc.num_groups, cpg = r.s.channels_per_group;
  const double inv_m = 1.0 / static_cast<double>(r.s.slice_elems);
  for (std::size_t j = 0; j < width;) {
    const std::size_t g = (c0 + j) / cpg, end = std::min(width, (g + 1) * cpg - c0);
    const double* st = r.group_stats + 4 * (n * G + g);
    const double rstd = st[1];
    const float b = static_cast<float>(-rstd * (st[3] * inv_m)),
                c = static_cast<float>(-rstd * (st[2] * inv_m));
    for (; j < end; ++j) {
      const double gamma = r.b.gamma ? r.b.gamma[c0 + j] : 1.0;
      t.mean[j] = static_cast<float>(st[0]);
      t.rstd[j] = static_cast<float>(rstd);
      t.scale[j] = static_cast<float>(gamma * rstd);
      t.beta[j] = r.b.beta ? r.b.beta[c0 + j] : 0.0f;
      if (with_coefs) t.a[j] = static_cast<float>(rstd * gamma), t.b[j] = b, t.c[j] = c;
    }
  }
}

void reduce_parameter_grads(const backward_run& r) {
  const std::size_t C = r.s.desc.channels;
  for (std::size_t c = 0; c < C; ++c) {
    double sum_dz = 0, sum_dzx = 0;
    for (std::size_t n = 0; n < r.s.desc.batch; ++n) {
      sum_dz += r.channel_sums[2 * (n * C + c)];
      sum_dzx += r.channel_sums[2 * (n * C + c) + 1];
    }
    if (r.b.dbeta) r.b.dbeta[c] = static_cast<float>(sum_dz);
    if (r.b.dgamma) r.b.dgamma[c] = static_cast<float>(sum_dzx);
  }
}

void execute_backward(const plan_state& s, const backward_buffers& b, tbb::task_arena* arena) {
  if (s.total == 0) {  // an empty batch or spatial extent: the parameter gradients are empty sums
    if (b.dgamma) std::fill(b.dgamma, b.dgamma + s.desc.channels, 0.0f);
    if (b.dbeta) std::fill(b.dbeta, b.dbeta + s.desc.channels, 0.0f);
    return;
  }
  double stack[kBackwardStackDoubles];  // uninitialized: every entry used is written before it is read
  double* scratch = backward_workspace_doubles(s) == 0 ? stack : b.workspace;
  const backward_run r{s, b, backward_kernels_for(s.family), scratch,
                       scratch + 2 * s.desc.batch * s.desc.channels};
  if (b.mean != nullptr) {
    for (std::size_t pair = 0; pair < s.pairs; ++pair) {
      r.group_stats[4 * pair] = b.mean[pair];
      r.group_stats[4 * pair + 1] = b.rstd[pair];
    }
  }
  const int concurrency = run_concurrency(s, arena);
  if (s.desc.memory_layout == layout::nhwc) {
    execute_backward_nhwc(r, arena, concurrency);
  } else {
    execute_backward_nchw(r, arena, concurrency);
  }
  if (b.dgamma || b.dbeta) reduce_parameter_grads(r);
}

}  // namespace groupnorm::detail
