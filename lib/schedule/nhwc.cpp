// The NHWC forward schedule. The reduction tree is fixed by the plan: a (sample, group) is the merge,
// in chunk order, of its row chunks' moments, each of which the kernel merges in block order. Two schedules
// compute exactly that tree, so they give the same bits and the choice between them may depend on the arena:
//  - units: a task owns (sample, run of nhwc_unit_groups groups): its chunks' moments in order, the stats,
//    then the apply of its columns. Used on the calling thread and when there are enough units for the arena.
//  - row split: tasks over (sample, chunk) write per-(chunk, group) partial moments into a stack array, a
//    fixed-order merge per (sample, group), then a parallel apply over the same (sample, chunk) tasks (static
//    partitioner, so a thread applies the rows it just summed, from its own L2). Used when samples * units is
//    smaller than the arena (B = 1, G = 1 is LayerNorm over channels-last data).
#include <cmath>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>

#include "schedule/schedule.hpp"

namespace groupnorm::detail {
namespace {

struct nhwc_kernels {
  nhwc_moments_fn moments;
  nhwc_apply_fn apply;
};

nhwc_kernels select_nhwc(const plan_state& s, const run_buffers& b) {
  const int d = static_cast<int>(s.desc.data_type), a = static_cast<int>(s.desc.fused_activation);
  const int r = s.desc.residual ? 1 : 0, w = b.sum ? 1 : 0;
  return {s.kernels->moments.nhwc[d][r], s.kernels->apply.nhwc[d][r][w][a]};
}

// Rows [row0, row0 + rows) of sample n.
struct row_range {
  std::size_t first_elem;  // (n * spatial + row0) * channels
  std::size_t rows;
};

row_range chunk_rows(const plan_state& s, std::size_t n, std::size_t k) {
  const std::size_t row0 = k * s.nhwc_chunk_rows;
  return {(n * s.desc.spatial + row0) * s.desc.channels, std::min(s.nhwc_chunk_rows, s.desc.spatial - row0)};
}

void moments_of(const plan_state& s, const run_buffers& b, const nhwc_kernels& k, row_range r, std::size_t g0,
                std::size_t g1, moments* out) {
  const std::size_t bytes = r.first_elem * s.elem_size;
  k.moments(advance(b.x, bytes), advance(b.residual, bytes), r.rows, g0, g1, s.nhwc_geo, out);
}

void apply_of(const plan_state& s, const run_buffers& b, const nhwc_kernels& k, row_range r, std::size_t g0,
              std::size_t g1, const slice_stats* st) {
  const std::size_t bytes = r.first_elem * s.elem_size;
  k.apply(advance(b.x, bytes), advance(b.residual, bytes), advance(b.y, bytes), advance(b.sum, bytes), r.rows,
          g0, g1, s.nhwc_geo, b.gamma, b.beta, st, s.stream_output);
}

// One (sample, unit) of groups [g0, g1), g1 - g0 <= N, on the current thread. N bounds the stack arrays,
// whose construction zeroes them: a size for small units keeps that from costing a tenth of a tiny run.
template <std::size_t N>
void run_unit_groups(const plan_state& s, const run_buffers& b, const nhwc_kernels& k, std::size_t n,
                     std::size_t g0, std::size_t g1) {
  moments total[N], part[N];
  slice_stats st[N];
  for (std::size_t c = 0; c < s.nhwc_chunks; ++c) {
    moments* dst = c == 0 ? total : part;
    moments_of(s, b, k, chunk_rows(s, n, c), g0, g1, dst);
    if (c != 0)
      for (std::size_t g = g0; g < g1; ++g) merge_into(total[g - g0], part[g - g0]);
  }
  for (std::size_t g = g0; g < g1; ++g)
    st[g - g0] = finish_slice(s, b, n * s.desc.num_groups + g, total[g - g0]);
  apply_of(s, b, k, {n * s.desc.spatial * s.desc.channels, s.desc.spatial}, g0, g1, st);
}

// One (sample, unit) on the current thread.
void run_unit(const plan_state& s, const run_buffers& b, const nhwc_kernels& k, std::size_t n,
              std::size_t u) {
  const std::size_t g0 = u * s.nhwc_unit_groups, g1 = std::min(s.desc.num_groups, g0 + s.nhwc_unit_groups);
  if (g1 - g0 <= 32)
    run_unit_groups<32>(s, b, k, n, g0, g1);
  else
    run_unit_groups<kNhwcUnitGroups>(s, b, k, n, g0, g1);
}

// Every (sample, chunk) in parallel, then the fixed-order merge, then the parallel apply.
void run_split(const plan_state& s, const run_buffers& b, const nhwc_kernels& k) {
  const std::size_t G = s.desc.num_groups, K = s.nhwc_chunks, tasks = s.desc.batch * K;
  moments partial[kNhwcMaxPartials];
  slice_stats stats[kNhwcMaxPartials / 2];  // K >= 2 here, so batch * G <= kNhwcMaxPartials / 2
  const tbb::blocked_range<std::size_t> range(0, tasks, 1);
  tbb::parallel_for(
      range,
      [&](const tbb::blocked_range<std::size_t>& r) {
        for (std::size_t t = r.begin(); t != r.end(); ++t)
          moments_of(s, b, k, chunk_rows(s, t / K, t % K), 0, G, partial + t * G);
      },
      tbb::static_partitioner());
  for (std::size_t n = 0; n < s.desc.batch; ++n)
    for (std::size_t g = 0; g < G; ++g) {
      moments total = partial[n * K * G + g];
      for (std::size_t c = 1; c < K; ++c) merge_into(total, partial[(n * K + c) * G + g]);
      stats[n * G + g] = finish_slice(s, b, n * G + g, total);
    }
  tbb::parallel_for(
      range,
      [&](const tbb::blocked_range<std::size_t>& r) {
        for (std::size_t t = r.begin(); t != r.end(); ++t)
          apply_of(s, b, k, chunk_rows(s, t / K, t % K), 0, G, stats + (t / K) * G);
      },
      tbb::static_partitioner());
}

void run_parallel(const plan_state& s, const run_buffers& b, const nhwc_kernels& k, int concurrency) {
  const std::size_t units = s.desc.batch * s.nhwc_units;
  if (s.nhwc_chunks > 1 && units < static_cast<std::size_t>(concurrency)) {
    run_split(s, b, k);
    return;
  }
  const std::size_t unit_elems = s.desc.spatial * s.nhwc_unit_groups * s.channels_per_group;
  const std::size_t grain = std::max<std::size_t>(1, kNhwcChunkElems / std::max<std::size_t>(1, unit_elems));
  tbb::parallel_for(
      tbb::blocked_range<std::size_t>(0, units, grain),
      [&](const tbb::blocked_range<std::size_t>& r) {
        for (std::size_t u = r.begin(); u != r.end(); ++u)
          run_unit(s, b, k, u / s.nhwc_units, u % s.nhwc_units);
      },
      tbb::simple_partitioner());
}

}  // namespace

void execute_nhwc_forward(const plan_state& s, const run_buffers& b, tbb::task_arena* arena) {
  if (s.total == 0) return;  // zero batch or spatial: a valid no-op
  const nhwc_kernels k = select_nhwc(s, b);
  const int concurrency = run_concurrency(s, arena);
  auto serial = [&] {
    for (std::size_t n = 0; n < s.desc.batch; ++n)
      for (std::size_t u = 0; u < s.nhwc_units; ++u) run_unit(s, b, k, n, u);
  };
  run_in_arena(arena, concurrency, serial, [&] { run_parallel(s, b, k, concurrency); });
}

}  // namespace groupnorm::detail
