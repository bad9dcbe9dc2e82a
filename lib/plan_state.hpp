// Internal: the validated, immutable state behind a plan, and the raw buffers of one run.
#pragma once

#include <cstddef>

#include "groupnorm/groupnorm.hpp"
#include "kernels/kernels.hpp"

namespace groupnorm::detail {

// Below this many elements a run stays on the calling thread: task dispatch would cost more than the work.
inline constexpr std::size_t kSerialElems = 32 * 1024;
// Slices at least this large are split across the arena even when there are enough (sample, group) pairs, so each
// thread's share of a slice stays in its own L2 between the moments pass and the apply pass.
inline constexpr std::size_t kSplitSliceElems = 256 * 1024;
// Smallest parallel unit of a split slice and the most chunks a slice has (chunk statistics live on the stack).
inline constexpr std::size_t kMinChunkElems = 8 * kBlockElems;
inline constexpr std::size_t kMaxChunks = 512;
// Outputs at least this large are written with non-temporal stores (measured on the 2-core reference machine:
// above its aggregate L2 they win 15-40%, below it they lose up to 20%). GROUPNORM_STREAM_BYTES overrides it.
inline constexpr std::size_t kStreamBytes = 4u << 20;

struct plan_state {
  problem desc;
  std::size_t channels_per_group = 0;
  std::size_t slice_elems = 0;  // elements of one (sample, group) slice
  std::size_t pairs = 0;        // batch * num_groups
  std::size_t total = 0;        // batch * channels * spatial
  std::size_t elem_size = 0;    // bytes per stored element
  // Fixed partition of every slice: chunks of chunk_elems (a multiple of kBlockElems), the last one shorter.
  // Depends on the shape only, never on the thread count.
  std::size_t chunk_elems = 0;
  std::size_t chunks_per_slice = 0;
  const kernel_table* kernels = nullptr;
  // Write y with non-temporal stores: the output is too large to stay in cache, so skipping the read-for-ownership
  // saves a third of the traffic and keeps x's slice in L2 for the apply pass.
  bool stream_output = false;
};

struct run_buffers {
  const void* x = nullptr;
  const void* residual = nullptr;
  void* y = nullptr;
  void* sum = nullptr;
  const float* gamma = nullptr;
  const float* beta = nullptr;
  float* mean = nullptr;
  float* rstd = nullptr;
};

// Validates a problem and fixes its schedule (throws groupnorm::invalid_argument). No heap allocation.
plan_state make_plan_state(const problem& p);

// Sizes of one run's buffers, for validation against the plan: element counts, 0 = absent.
struct buffer_sizes {
  std::size_t x, y, gamma, beta, residual, sum, mean, rstd;
};

// Validates the buffers of a run against the plan (sizes, presence, aliasing); throws before anything is written.
void validate_run(const plan_state& s, const run_buffers& b, const buffer_sizes& n);

// Executes a validated run in `arena` (nullptr: the current arena). No heap allocation, no thread creation.
void execute(const plan_state& s, const run_buffers& b, tbb::task_arena* arena);

}  // namespace groupnorm::detail
