// The schedule's entry point and what every layout's schedule shares: the statistics of a merged slice and
// the thread count of a run.
#include <cmath>
#include <limits>
#include <string>

#include <oneapi/tbb/task_arena.h>

#include "schedule/schedule.hpp"

namespace groupnorm::detail {

namespace {

// The slice's moments by the kernels' exact double path, over its elements in memory order.
moments exact_slice_moments(const plan_state& s, const run_buffers& b, std::size_t pair) {
  const exact_moments_fn f =
      s.kernels->moments.exact[static_cast<int>(s.desc.data_type)][b.residual != nullptr ? 1 : 0];
  if (s.desc.memory_layout == layout::nchw) {
    const std::size_t at = pair * s.slice_elems * s.elem_size;
    return f(advance(b.x, at), advance(b.residual, at), 1, s.slice_elems, s.slice_elems);
  }
  const std::size_t C = s.desc.channels, G = s.desc.num_groups;
  const std::size_t at = (pair / G * s.desc.spatial * C + pair % G * s.channels_per_group) * s.elem_size;
  return f(advance(b.x, at), advance(b.residual, at), s.desc.spatial, s.channels_per_group, C);
}

}  // namespace

slice_stats finish_slice(const plan_state& s, const run_buffers& b, std::size_t pair, const moments& merged) {
  // Float lane sums of squares round in the subnormal range below squares of FLT_MIN, with an absolute error
  // of up to 2^-150 per element (at std ~1e-23 the squares vanish, and a block of tiny deviations can even
  // sum to exactly zero like a constant one). Against var + eps that error stays below float's relative
  // 2^-24 while var + eps >= 2^-126 = FLT_MIN; below it (eps = 0 or subnormal, var tiny or zero), the slice
  // is redone in double. Plain sequential arithmetic on the slice's values: the same bits on every family
  // and thread count, and nothing else pays for it (constant blocks in an ordinary slice stay on the fast
  // path).
  const double eps = static_cast<double>(s.desc.epsilon);
  const moments m = merged.m2 / merged.count + eps < static_cast<double>(std::numeric_limits<float>::min())
                        ? exact_slice_moments(s, b, pair)
                        : merged;
  const double var = m.m2 / m.count;
  const slice_stats st{m.mean, 1.0 / std::sqrt(var + static_cast<double>(s.desc.epsilon))};
  if (b.mean) b.mean[pair] = static_cast<float>(st.mean);
  if (b.rstd) b.rstd[pair] = static_cast<float>(st.rstd);
  return st;
}

int run_concurrency(const plan_state& s, tbb::task_arena* arena) {
  if (s.total < kSerialElems) return 1;
  return arena ? arena->max_concurrency() : tbb::this_task_arena::max_concurrency();
}

void execute(const plan_state& s, const run_buffers& b, tbb::task_arena* arena) {
  switch (s.dir) {
    case direction::forward:
      if (s.desc.memory_layout == layout::nhwc) return execute_nhwc_forward(s, b, arena);
      return execute_nchw_forward(s, b, arena);
  }
  throw invalid_argument("groupnorm: plan direction " + std::to_string(static_cast<int>(s.dir)) +
                         " has no schedule");
}

}  // namespace groupnorm::detail
