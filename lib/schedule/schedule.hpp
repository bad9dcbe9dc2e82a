// The schedule stage: runs a validated plan's passes over the arena (lib/schedule/*.cpp). The partition of
// every reduction is fixed by the plan; only who computes a part depends on the arena, never what is merged
// with what.
#pragma once

#include <cstddef>

#include <oneapi/tbb/task_arena.h>

#include "plan/plan_state.hpp"

namespace groupnorm::detail {

// mean and rstd = 1 / sqrt(var + eps) of a fully merged (sample, group); writes the optional saved
// statistics.
slice_stats finish_slice(const plan_state& s, const run_buffers& b, std::size_t pair, const moments& m);

// Threads a run may use: 1 below kSerialElems without asking TBB (the concurrency query is a library call
// that costs as much as a tiny slice), else the arena's (nullptr: the current arena's) concurrency.
int run_concurrency(const plan_state& s, tbb::task_arena* arena);

// Executes a validated run in `arena` (nullptr: the current arena). No heap allocation, no thread creation.
void execute(const plan_state& s, const run_buffers& b, tbb::task_arena* arena);

// The forward pass per layout (lib/schedule/nchw.cpp, lib/schedule/nhwc.cpp).
void execute_nchw_forward(const plan_state& s, const run_buffers& b, tbb::task_arena* arena);
void execute_nhwc_forward(const plan_state& s, const run_buffers& b, tbb::task_arena* arena);

// serial() on the calling thread when the run has one thread, else parallel() inside `arena` (nullptr: the
// current arena).
template <class Serial, class Parallel>
void run_in_arena(tbb::task_arena* arena, int concurrency, Serial&& serial, Parallel&& parallel) {
  if (concurrency <= 1)
    serial();
  else if (arena)
    arena->execute(parallel);
  else
    parallel();
}

}  // namespace groupnorm::detail
