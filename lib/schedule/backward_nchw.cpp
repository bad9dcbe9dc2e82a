// The NCHW backward schedule: whole slices per task, or one slice spread over the arena by channel rows when
// there are fewer slices than threads or a slice is large. Only who computes a (sample, channel) sum depends
// on the arena, never what is added to what.
#include <algorithm>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>

#include "schedule/backward.hpp"

namespace groupnorm::detail {
namespace {

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

// Channels [c0, c1) of sample n in tiles of kBackwardLaneTile rows: kernel(c, width, tile) per tile.
template <class Kernel>
void for_each_row_tile(const backward_run& r, std::size_t n, std::size_t c0, std::size_t c1, bool with_coefs,
                       Kernel&& kernel) {
  lane_tile t;
  for (std::size_t c = c0; c < c1; c += kBackwardLaneTile) {
    const std::size_t width = std::min(kBackwardLaneTile, c1 - c);
    fill_tile(r, n, c, width, with_coefs, t);
    kernel(c, width, t);
  }
}

// Channels [c0, c1) of one slice: their sums, or their dx.
void rows_sums(const backward_run& r, std::size_t pair, std::size_t c0, std::size_t c1) {
  const std::size_t n = pair / r.s.desc.num_groups;
  const rows_sums_fn f =
      r.k.rows_sums[static_cast<int>(r.s.desc.data_type)][static_cast<int>(r.s.desc.fused_activation)];
  for_each_row_tile(r, n, c0, c1, false, [&](std::size_t c, std::size_t width, const lane_tile& t) {
    f(row_of(r, r.b.x, n, c), row_of(r, r.b.dy, n, c), width, r.s.desc.spatial, t.params(),
      r.channel_sums + 2 * (n * r.s.desc.channels + c));
  });
}

void rows_dx(const backward_run& r, std::size_t pair, std::size_t c0, std::size_t c1) {
  const std::size_t n = pair / r.s.desc.num_groups;
  const rows_dx_fn f =
      r.k.rows_dx[static_cast<int>(r.s.desc.data_type)][static_cast<int>(r.s.desc.fused_activation)];
  for_each_row_tile(r, n, c0, c1, true, [&](std::size_t c, std::size_t width, const lane_tile& t) {
    f(row_of(r, r.b.x, n, c), row_of(r, r.b.dy, n, c), row_of(r, r.b.dx, n, c), width, r.s.desc.spatial,
      t.params(), t.coefs());
  });
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

void execute_backward_nchw(const backward_run& r, tbb::task_arena* arena, int concurrency) {
  run_in_arena(
      arena, concurrency, [&] { run_slices(r, 0, r.s.pairs); }, [&] { run_parallel(r, concurrency); });
}

}  // namespace groupnorm::detail
