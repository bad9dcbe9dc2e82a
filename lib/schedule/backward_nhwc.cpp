// Scheduling of layout::nhwc backward runs: statistics recomputed with the forward's NHWC partition, then
// per (sample, channel tile) sums over all rows (each channel's sum depends on its rows only, never on the
// tile), the fixed-order group sums, then dx in parallel over (sample, row chunk).
#include <algorithm>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>

#include "schedule/backward.hpp"

namespace groupnorm::detail {
namespace {

// Rows of one dx task: about this many elements, so a task amortizes its per-tile constants.
constexpr std::size_t kDxTaskElems = 64 * 1024;

// Runs f(i) for i in [0, count): on this thread, or over the current arena in a static partition.
template <class F>
void for_each(int concurrency, std::size_t count, F&& f) {
  if (concurrency <= 1) {
    for (std::size_t i = 0; i < count; ++i) f(i);
    return;
  }
  tbb::parallel_for(
      tbb::blocked_range<std::size_t>(0, count, 1),
      [&](const tbb::blocked_range<std::size_t>& range) {
        for (std::size_t i = range.begin(); i != range.end(); ++i) f(i);
      },
      tbb::static_partitioner());
}

std::size_t tiles_per_sample(const backward_run& r) {
  return (r.s.desc.channels + kBackwardLaneTile - 1) / kBackwardLaneTile;
}

void tile_sums(const backward_run& r, std::size_t n, std::size_t tile) {
  const std::size_t C = r.s.desc.channels, c0 = tile * kBackwardLaneTile;
  const std::size_t width = std::min(kBackwardLaneTile, C - c0);
  lane_tile t;
  fill_tile(r, n, c0, width, false, t);
  double out[2 * kBackwardLaneTile];
  const std::size_t bytes = (n * r.s.desc.spatial * C + c0) * r.s.elem_size;
  r.k.lane_sums[static_cast<int>(r.s.desc.data_type)][static_cast<int>(r.s.desc.fused_activation)](
      advance(r.b.x, bytes), advance(r.b.dy, bytes), r.s.desc.spatial, C, width, t.params(), out);
  for (std::size_t j = 0; j < width; ++j) {
    r.channel_sums[2 * (n * C + c0 + j)] = out[j];
    r.channel_sums[2 * (n * C + c0 + j) + 1] = out[width + j];
  }
}

void chunk_dx(const backward_run& r, std::size_t n, std::size_t row0, std::size_t rows) {
  const std::size_t C = r.s.desc.channels;
  const lane_dx_fn f =
      r.k.lane_dx[static_cast<int>(r.s.desc.data_type)][static_cast<int>(r.s.desc.fused_activation)];
  lane_tile t;
  for (std::size_t c0 = 0; c0 < C; c0 += kBackwardLaneTile) {
    const std::size_t width = std::min(kBackwardLaneTile, C - c0);
    fill_tile(r, n, c0, width, true, t);
    const std::size_t bytes = ((n * r.s.desc.spatial + row0) * C + c0) * r.s.elem_size;
    f(advance(r.b.x, bytes), advance(r.b.dy, bytes), advance(r.b.dx, bytes), rows, C, width, t.params(),
      t.coefs());
  }
}

void run(const backward_run& r, int concurrency) {
  const plan_state& s = r.s;
  const std::size_t batch = s.desc.batch;
  if (r.b.mean == nullptr) for_each(concurrency, batch, [&](std::size_t n) { recompute_stats_nhwc(r, n); });
  const std::size_t tiles = tiles_per_sample(r);
  for_each(concurrency, batch * tiles, [&](std::size_t i) { tile_sums(r, i / tiles, i % tiles); });
  for (std::size_t pair = 0; pair < s.pairs; ++pair) finish_group(r, pair);
  if (r.b.dx == nullptr) return;
  const std::size_t rows = std::max<std::size_t>(1, kDxTaskElems / s.desc.channels);
  const std::size_t chunks = (s.desc.spatial + rows - 1) / rows;
  for_each(concurrency, batch * chunks, [&](std::size_t i) {
    const std::size_t row0 = i % chunks * rows;
    chunk_dx(r, i / chunks, row0, std::min(rows, s.desc.spatial - row0));
  });
}

}  // namespace

// The forward's NHWC reduction tree (lib/schedule/nhwc.cpp): per unit of groups, row chunks' moments merged
// in chunk order.
void recompute_stats_nhwc(const backward_run& r, std::size_t n) {
  const plan_state& s = r.s;
  const nhwc_moments_fn f = s.kernels->moments.nhwc[static_cast<int>(s.desc.data_type)][0];
  for (std::size_t u = 0; u < s.nhwc_units; ++u) {
    const std::size_t g0 = u * s.nhwc_unit_groups, g1 = std::min(s.desc.num_groups, g0 + s.nhwc_unit_groups);
    moments total[kNhwcUnitGroups], part[kNhwcUnitGroups];
    for (std::size_t k = 0; k < s.nhwc_chunks; ++k) {
      const std::size_t row0 = k * s.nhwc_chunk_rows;
      const std::size_t bytes = (n * s.desc.spatial + row0) * s.desc.channels * s.elem_size;
      moments* dst = k == 0 ? total : part;
      f(advance(r.b.x, bytes), nullptr, std::min(s.nhwc_chunk_rows, s.desc.spatial - row0), g0, g1,
        s.nhwc_geo, dst);
      if (k != 0)
        for (std::size_t g = g0; g < g1; ++g) merge_into(total[g - g0], part[g - g0]);
    }
    for (std::size_t g = g0; g < g1; ++g) store_stats(r, n * s.desc.num_groups + g, total[g - g0]);
  }
}

void execute_backward_nhwc(const backward_run& r, tbb::task_arena* arena, int concurrency) {
  const auto whole = [&] { run(r, concurrency); };  // run() itself stays serial for one thread
  run_in_arena(arena, concurrency, whole, whole);
}

}  // namespace groupnorm::detail
