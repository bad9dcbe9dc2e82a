// The NCHW forward schedule: maps (sample, group) slices onto the arena. The partition of every reduction
// (blocks -> chunks -> slice, merged in index order) is fixed by the plan; only *who* computes a chunk
// depends on the arena, never *what* is merged with what, so every thread count gives the same bits.
#include <algorithm>
#include <cmath>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>

#include "schedule/schedule.hpp"

namespace groupnorm::detail {
namespace {

// Pointers to one slice (pair = sample * num_groups + group; in NCHW a slice is contiguous).
struct slice_view {
  const void* x;
  const void* residual;
  void* y;
  void* sum;
  const float* gamma;
  const float* beta;
};

slice_view slice_at(const plan_state& s, const run_buffers& b, std::size_t pair) {
  const std::size_t bytes = pair * s.slice_elems * s.elem_size;
  const std::size_t first_channel = (pair % s.desc.num_groups) * s.channels_per_group;
  return {advance(b.x, bytes),
          advance(b.residual, bytes),
          advance(b.y, bytes),
          advance(b.sum, bytes),
          b.gamma ? b.gamma + first_channel : nullptr,
          b.beta ? b.beta + first_channel : nullptr};
}

struct slice_kernels {
  chunk_moments_fn moments;
  small_slices_moments_fn small_moments;
  apply_fn apply;
};

slice_kernels select(const plan_state& s, const run_buffers& b) {
  const int d = static_cast<int>(s.desc.data_type), a = static_cast<int>(s.desc.fused_activation);
  const int r = s.desc.residual ? 1 : 0, w = b.sum ? 1 : 0;
  return {s.kernels->moments.nchw_chunk[d][r], s.kernels->moments.nchw_small_slices[d][r],
          s.kernels->apply.nchw[d][r][w][a]};
}

moments chunk_at(const plan_state& s, const slice_kernels& k, const slice_view& v, std::size_t chunk) {
  const std::size_t begin = chunk * s.chunk_elems;
  const std::size_t n = std::min(s.chunk_elems, s.slice_elems - begin);
  return k.moments(advance(v.x, begin * s.elem_size), advance(v.residual, begin * s.elem_size), n);
}

void apply_range(const plan_state& s, const slice_kernels& k, const slice_view& v, std::size_t begin,
                 std::size_t end, slice_stats st) {
  k.apply(v.x, v.residual, v.y, v.sum, begin, end, s.desc.spatial, v.gamma, v.beta, st, s.stream_output);
}

moments slice_moments(const plan_state& s, const slice_kernels& k, const slice_view& v) {
  moments total;
  for (std::size_t c = 0; c < s.chunks_per_slice; ++c) merge_into(total, chunk_at(s, k, v, c));
  return total;
}

// Whole slices [first, last) on the current thread: moments chunk by chunk (the same chunks, merged in the
// same order, as the split path), then the apply while the slices are still in cache. Small slices go in
// batches: the moments of a batch are independent latency chains (reductions, divisions, sqrt) that the core
// overlaps, which matters for tiny problems where that latency, not memory, is the cost.
void run_pairs(const plan_state& s, const run_buffers& b, const slice_kernels& k, std::size_t first,
               std::size_t last) {
  constexpr std::size_t kBatchPairs = 16, kBatchElems = 4096;
  const std::size_t batch =
      std::clamp<std::size_t>(kBatchElems / std::max<std::size_t>(1, s.slice_elems), 1, kBatchPairs);
  for (std::size_t begin = first; begin < last; begin += batch) {
    const std::size_t end = std::min(last, begin + batch);
    slice_stats stats[kBatchPairs];
    if (s.slice_elems <= kBlockElems) {  // one block per slice: a batch of them in lockstep, same bits
      moments m[kBatchPairs];
      const slice_view first_view = slice_at(s, b, begin);
      k.small_moments(first_view.x, first_view.residual, s.slice_elems, s.slice_elems, end - begin, m);
      for (std::size_t pair = begin; pair < end; ++pair)
        stats[pair - begin] = finish_slice(s, b, pair, m[pair - begin]);
    } else {
      for (std::size_t pair = begin; pair < end; ++pair)
        stats[pair - begin] = finish_slice(s, b, pair, slice_moments(s, k, slice_at(s, b, pair)));
    }
    for (std::size_t pair = begin; pair < end; ++pair)
      apply_range(s, k, slice_at(s, b, pair), 0, s.slice_elems, stats[pair - begin]);
  }
}

// One slice spread over the arena: chunk moments in parallel into a stack array, a fixed-order merge, then a
// parallel apply. static_partitioner gives each thread the same chunks in both loops, so the apply reads what
// the same core just summed from its own L2.
void run_pair_split(const plan_state& s, const run_buffers& b, const slice_kernels& k, std::size_t pair) {
  const slice_view v = slice_at(s, b, pair);
  moments partial[kMaxChunks];
  const tbb::blocked_range<std::size_t> chunks(0, s.chunks_per_slice, 1);
  tbb::parallel_for(
      chunks,
      [&](const tbb::blocked_range<std::size_t>& r) {
        for (std::size_t c = r.begin(); c != r.end(); ++c) partial[c] = chunk_at(s, k, v, c);
      },
      tbb::static_partitioner());
  moments total;
  for (std::size_t c = 0; c < s.chunks_per_slice; ++c) merge_into(total, partial[c]);
  const slice_stats st = finish_slice(s, b, pair, total);
  tbb::parallel_for(
      chunks,
      [&](const tbb::blocked_range<std::size_t>& r) {
        apply_range(s, k, v, r.begin() * s.chunk_elems, std::min(s.slice_elems, r.end() * s.chunk_elems), st);
      },
      tbb::static_partitioner());
}

void run_parallel(const plan_state& s, const run_buffers& b, const slice_kernels& k, int concurrency) {
  const bool split = s.pairs < static_cast<std::size_t>(concurrency) || s.slice_elems >= kSplitSliceElems;
  if (split && s.chunks_per_slice > 1) {
    for (std::size_t pair = 0; pair < s.pairs; ++pair) run_pair_split(s, b, k, pair);
    return;
  }
  // Whole slices per task; group small slices so a task has at least ~kMinChunkElems of work. The static
  // partition hands each thread the same pairs on every run, so a pipeline that runs the same shape again (or
  // a producer that partitioned the same way) finds its share in that core's L2; the pairs' work is uniform
  // anyway, so nothing is lost to imbalance.
  const std::size_t grain =
      std::max<std::size_t>(1, kMinChunkElems / std::max<std::size_t>(1, s.slice_elems));
  tbb::parallel_for(
      tbb::blocked_range<std::size_t>(0, s.pairs, grain),
      [&](const tbb::blocked_range<std::size_t>& r) { run_pairs(s, b, k, r.begin(), r.end()); },
      tbb::static_partitioner());
}

}  // namespace

void execute_nchw_forward(const plan_state& s, const run_buffers& b, tbb::task_arena* arena) {
  if (s.total == 0) return;  // zero batch or spatial: a valid no-op
  const slice_kernels k = select(s, b);
  const int concurrency = run_concurrency(s, arena);
  run_in_arena(
      arena, concurrency, [&] { run_pairs(s, b, k, 0, s.pairs); },
      [&] { run_parallel(s, b, k, concurrency); });
}

}  // namespace groupnorm::detail
