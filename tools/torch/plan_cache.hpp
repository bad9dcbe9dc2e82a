// Plans and arenas the libtorch operator reuses across calls: one plan per problem, one arena per thread
// count.
#pragma once

#include <cstddef>

#include <groupnorm/groupnorm.hpp>

namespace groupnorm_torch {

// Runs below this many elements stay on the calling thread anyway (the library's serial threshold), so they
// are never cut into units for PyTorch's threads.
inline constexpr std::size_t kSplitMinElems = 32768;

// The plan for p, built on first use and kept (a bounded cache: a model has a handful of GroupNorm shapes,
// and a workload that cycles through more than the bound only pays plan construction again). Thread-safe; the
// returned plan shares its state with the cached one, so it stays valid if the cache is cleared.
groupnorm::plan cached_plan(const groupnorm::problem& p);

// An arena of min(threads, hardware threads) threads, created on first use and kept for the process, so the
// operator follows torch.set_num_threads() without rebuilding oneTBB state per call. threads >= 1.
tbb::task_arena* arena_for_threads(int threads);

}  // namespace groupnorm_torch
