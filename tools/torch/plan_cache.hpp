// Plans and arenas the libtorch operator reuses across calls: one plan per problem, one arena per thread
// count.
#pragma once

#include <cstddef>

#include <groupnorm/groupnorm.hpp>

namespace groupnorm_torch {

// Runs below this many elements stay on the calling thread anyway (the library's serial threshold), so they
// are never cut into units for PyTorch's threads.
inline constexpr std::size_t kSplitMinElems = 32768;

// How many parts each sample's groups are cut into so that batch * parts units spread evenly over `threads`
// PyTorch threads: the smallest divisor of num_groups that makes the unit count a multiple of the thread
// count, else num_groups (the finest cut); 0 when even that gives fewer units than threads (LayerNorm-like
// B * G), where the whole plan should split its slices over a oneTBB arena instead.
inline std::size_t parts_per_sample(std::size_t batch, std::size_t groups, int threads) {
  const auto t = static_cast<std::size_t>(threads);
  for (std::size_t d = 1; d <= groups; ++d)
    if (groups % d == 0 && batch * d % t == 0) return d;
  return batch * groups < t ? 0 : groups;
}

// The plan for p, built on first use and kept (a bounded cache: a model has a handful of GroupNorm shapes,
// and a workload that cycles through more than the bound only pays plan construction again). Thread-safe; the
// returned plan shares its state with the cached one, so it stays valid if the cache is cleared.
groupnorm::plan cached_plan(const groupnorm::problem& p);

// An arena of min(threads, hardware threads) threads, created on first use and kept for the process, so the
// operator follows torch.set_num_threads() without rebuilding oneTBB state per call. threads >= 1.
tbb::task_arena* arena_for_threads(int threads);

}  // namespace groupnorm_torch
