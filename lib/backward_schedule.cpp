// Maps the backward pass onto the arena. The reduction tree is fixed by the shape: per (sample, channel) the
// kernel's block sums added in block order; per (sample, group) its channels in channel order; per channel
// (dgamma, dbeta) its samples in sample order. Tasks only decide who computes a (sample, channel) sum, so
// every thread count gives the same bits. dx is element-wise once its group's sums are known.
#include <algorithm>
#include <cmath>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>

#include "backward.hpp"

namespace groupnorm::detail {
namespace {

// Stores a slice's statistics as the forward saves them (rounded to float), so recomputed and given
// statistics give the same bits.
void store_stats(const backward_run& r, std::size_t pair, const moments& m) {
  const slice_stats st = finish_slice(r.s, stats_source(r), pair, m);
  r.group_stats[4 * pair] = rounded_to_float(st.mean);
  r.group_stats[4 * pair + 1] = rounded_to_float(st.rstd);
}

moments chunk_of(const backward_run& r, std::size_t pair, std::size_t chunk) {
  const plan_state& s = r.s;
  const std::size_t begin = pair * s.slice_elems + chunk * s.chunk_elems;
  const std::size_t n = std::min(s.chunk_elems, s.slice_elems - chunk * s.chunk_elems);
  return s.kernels->moments.nchw_chunk[static_cast<int>(s.desc.data_type)][0](
      advance(r.b.x, begin * s.elem_size), nullptr, n);
}

// A slice's statistics with its chunks' moments computed in parallel, merged in chunk order (the forward's
// split path).
void recompute_stats_split(const backward_run& r, std::size_t pair) {
  moments partial[kMaxChunks];
  tbb::parallel_for(
      tbb::blocked_range<std::size_t>(0, r.s.chunks_per_slice, 1),
      [&](const tbb::blocked_range<std::size_t>& range) {
        for (std::size_t c = range.begin(); c != range.end(); ++c) partial[c] = chunk_of(r, pair, c);
      },
      tbb::static_partitioner());
  moments total;
  for (std::size_t c = 0; c < r.s.chunks_per_slice; ++c) merge_into(total, partial[c]);
  store_stats(r, pair, total);
}

template <class P>  // const void* or void*
P row_of(const backward_run& r, P base, std::size_t n, std::size_t c) {
  return advance(base, (n * r.s.desc.channels + c) * r.s.desc.spatial * r.s.elem_size);
}

// Channels [c0, c1) of one slice: their sums, or their dx, in tiles of kBackwardLaneTile rows.
void rows_sums(const backward_run& r, std::size_t pair, std::size_t c0, std::size_t c1) {
  const std::size_t n = pair / r.s.desc.num_groups;
  const rows_sums_fn f =
      r.k.rows_sums[static_cast<int>(r.s.desc.data_type)][static_cast<int>(r.s.desc.fused_activation)];
  lane_tile t;
  for (std::size_t c = c0; c < c1; c += kBackwardLaneTile) {
    const std::size_t width = std::min(kBackwardLaneTile, c1 - c);
    fill_tile(r, n, c, width, false, t);
    f(row_of(r, r.b.x, n, c), row_of(r, r.b.dy, n, c), width, r.s.desc.spatial, t.params(),
      r.channel_sums + 2 * (n * r.s.desc.channels + c));
  }
}

void rows_dx(const backward_run& r, std::size_t pair, std::size_t c0, std::size_t c1) {
  const std::size_t n = pair / r.s.desc.num_groups;
  const rows_dx_fn f =
      r.k.rows_dx[static_cast<int>(r.s.desc.data_type)][static_cast<int>(r.s.desc.fused_activation)];
  lane_tile t;
  for (std::size_t c = c0; c < c1; c += kBackwardLaneTile) {
    const std::size_t width = std::min(kBackwardLaneTile, c1 - c);
    fill_tile(r, n, c, width, true, t);
    f(row_of(r, r.b.x, n, c), row_of(r, r.b.dy, n, c), row_of(r, r.b.dx, n, c), width, r.s.desc.spatial,
      t.params(), t.coefs());
  }
}

std::size_t first_channel(const backward_run& r, std::size_t pair) {
  return (pair % r.s.desc.num_groups) * r.s.channels_per_group;
}

// Whole slices [first, last) on the current thread: statistics, sums, then dx while the slice is in cache.
void run_slices(const backward_run& r, std::size_t first, std::size_t last) {
  for (std::size_t pair = first; pair < last; ++pair) {
    if (r.b.mean == nullptr) {
      moments total;
      for (std::size_t c = 0; c < r.s.chunks_per_slice; ++c) merge_into(total, chunk_of(r, pair, c));
      store_stats(r, pair, total);
    }
    const std::size_t c0 = first_channel(r, pair), c1 = c0 + r.s.channels_per_group;
    rows_sums(r, pair, c0, c1);
    finish_group(r, pair);
    if (r.b.dx) rows_dx(r, pair, c0, c1);
  }
}

// One slice spread over the arena by channel rows; static_partitioner gives each thread the same rows in
// both loops, so dx reads what the same core just summed.
void run_slice_split(const backward_run& r, std::size_t pair) {
  if (r.b.mean == nullptr) recompute_stats_split(r, pair);
  const std::size_t c0 = first_channel(r, pair);
  const tbb::blocked_range<std::size_t> rows(c0, c0 + r.s.channels_per_group, 1);
  tbb::parallel_for(
      rows,
      [&](const tbb::blocked_range<std::size_t>& range) { rows_sums(r, pair, range.begin(), range.end()); },
      tbb::static_partitioner());
  finish_group(r, pair);
  if (r.b.dx == nullptr) return;
  tbb::parallel_for(
      rows,
      [&](const tbb::blocked_range<std::size_t>& range) { rows_dx(r, pair, range.begin(), range.end()); },
      tbb::static_partitioner());
}

void run_parallel(const backward_run& r, int concurrency) {
  const plan_state& s = r.s;
  const bool split = s.pairs < static_cast<std::size_t>(concurrency) || s.slice_elems >= kSplitSliceElems;
  if (split && s.channels_per_group > 1) {
    for (std::size_t pair = 0; pair < s.pairs; ++pair) run_slice_split(r, pair);
    return;
  }
  const std::size_t grain =
      std::max<std::size_t>(1, kMinChunkElems / std::max<std::size_t>(1, s.slice_elems));
  tbb::parallel_for(
      tbb::blocked_range<std::size_t>(0, s.pairs, grain),
      [&](const tbb::blocked_range<std::size_t>& range) { run_slices(r, range.begin(), range.end()); },
      tbb::static_partitioner());
}

}  // namespace

// Out of line on purpose: GCC 12 -O3's SLP vectorizer drops the rounding of two adjacent
// `double = static_cast<float>(double)` stores (it merges them into one 16-byte move of the doubles).
[[gnu::noinline]] double rounded_to_float(double v) noexcept {
  return static_cast<float>(v);
}

std::size_t backward_scratch_doubles(const plan_state& s) noexcept {
  return 2 * s.desc.batch * s.desc.channels + 4 * s.pairs;
}

std::size_t backward_workspace_doubles(const plan_state& s) noexcept {
  const std::size_t n = backward_scratch_doubles(s);
  return n <= kBackwardStackDoubles ? 0 : n;
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
  } else if (concurrency <= 1) {
    run_slices(r, 0, s.pairs);
  } else if (arena) {
    arena->execute([&] { run_parallel(r, concurrency); });
  } else {
    run_parallel(r, concurrency);
  }
  if (b.dgamma || b.dbeta) reduce_parameter_grads(r);
}

}  // namespace groupnorm::detail
