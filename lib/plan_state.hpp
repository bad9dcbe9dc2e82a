// Internal: the validated, immutable state behind a plan, and the raw buffers of one run.
#pragma once

#include <cstddef>

#include "entry.hpp"
#include "groupnorm/groupnorm.hpp"
#include "kernels/kernels.hpp"

namespace groupnorm::detail {

// Below this many elements a run stays on the calling thread: task dispatch would cost more than the work.
inline constexpr std::size_t kSerialElems = 32 * 1024;
// Slices at least this large are split across the arena even when there are enough (sample, group) pairs, so
// each thread's share of a slice stays in its own L2 between the moments pass and the apply pass.
inline constexpr std::size_t kSplitSliceElems = 256 * 1024;
// Smallest parallel unit of a split slice and the most chunks a slice has (chunk statistics live on the
// stack).
inline constexpr std::size_t kMinChunkElems = 8 * kBlockElems;
inline constexpr std::size_t kMaxChunks = 512;
// f32 outputs at least this large are written with non-temporal stores where the kernels' stores cover whole
// lines. Chosen by what the next layer pays (`groupnorm bench --consumer`: a run followed by a read of y) on
// the 2-core reference machine (32 MiB L3): up to ~5 MiB cached stores win (the reader finds y in L3; 4 MiB
// LayerNorm 0.50-0.65 vs 1.12-1.17 ms), 8-16 MiB tie, from ~24 MiB streaming wins (25 vs 35-37 ms).
// GROUPNORM_STREAM_BYTES overrides it (lib/environment.cpp).
inline constexpr std::size_t kStreamBytes = 16u << 20;
// NHWC: target elements of a row chunk; most (sample, chunk, group) partial moments of a row-split run (they
// live on the stack of execute_nhwc: 48 KiB); most groups of a unit (per-task stack: 2 moments + 1 stats
// each); widest packed virtual row.
inline constexpr std::size_t kNhwcChunkElems = 64 * 1024;
inline constexpr std::size_t kNhwcMaxPartials = 2048;
inline constexpr std::size_t kNhwcUnitGroups = 256;
inline constexpr std::size_t kNhwcMaxLanes = 256;
// NHWC moments blocks: about kNhwcBlockElems elements of a sub-tile, in [kNhwcMinBlockRows,
// kNhwcMaxBlockRows] rows. Each block pays a fixed cost per group segment (sampled center, lane -> group
// sums, a Chan merge), so blocks are as large as float lane sums allow: a lane sums at most 1024 (virtual)
// rows (as it did at C = 16 before), and a block has at least 128 rows, what an NCHW block sums per lane.
// Measured in two steps: at least 128 rows instead of 64, the C >= 256 UNet shapes 3-10%; then 65536 instead
// of 16384 elements, InstanceNorm NHWC (C = G = 64) 1.49 / 1.60 -> 1.31 / 1.45 times the memcpy (1 / 2
// threads).
inline constexpr std::size_t kNhwcBlockElems = 64 * 1024;
inline constexpr std::size_t kNhwcMinBlockRows = 128;
inline constexpr std::size_t kNhwcMaxBlockRows = 1024;

struct plan_state {
  problem desc;
  std::size_t channels_per_group = 0;
  std::size_t slice_elems = 0;  // elements of one (sample, group) slice (0 when total is 0)
  std::size_t pairs = 0;        // batch * num_groups
  std::size_t total = 0;        // batch * channels * spatial
  std::size_t elem_size = 0;    // bytes per stored element
  // Fixed partition of every slice: chunks of chunk_elems (a multiple of kBlockElems), the last one shorter.
  // Depends on the shape only, never on the thread count.
  std::size_t chunk_elems = 0;
  std::size_t chunks_per_slice = 0;
  // NHWC (layout::nhwc) partition, from the shape only: each sample's rows are cut into nhwc_chunks chunks of
  // nhwc_chunk_rows rows (a multiple of nhwc_geo.block_rows; the last one shorter); a (sample, group) is the
  // merge, in chunk order, of its chunk moments. Groups are scheduled in units of nhwc_unit_groups.
  nhwc_geometry nhwc_geo{};
  std::size_t nhwc_chunk_rows = 0;
  std::size_t nhwc_chunks = 0;
  std::size_t nhwc_unit_groups = 0;
  std::size_t nhwc_units = 0;  // per sample
  const kernel_table* kernels = nullptr;
  // Write y with non-temporal stores: the output is too large to stay in cache, so skipping the
  // read-for-ownership saves a third of the traffic and keeps x's slice in L2 for the apply pass.
  bool stream_output = false;
};

// p + bytes; a null pointer (an absent optional buffer) stays null.
inline const void* advance(const void* p, std::size_t bytes) noexcept {
  return p ? static_cast<const char*>(p) + bytes : nullptr;
}
inline void* advance(void* p, std::size_t bytes) noexcept {
  return p ? static_cast<char*>(p) + bytes : nullptr;
}

// mean and rstd = 1 / sqrt(var + eps) of a fully merged (sample, group); writes the optional saved
// statistics.
slice_stats finish_slice(const plan_state& s, const run_buffers& b, std::size_t pair, const moments& m);

// Validates a problem and fixes its schedule (throws groupnorm::invalid_argument). No heap allocation.
plan_state make_plan_state(const problem& p);

// Validates the buffers of a run against the plan (sizes, presence, aliasing); throws before anything is
// written.
void validate_run(const plan_state& s, const run_buffers& b, const buffer_sizes& n);

// Threads a run may use: 1 below kSerialElems without asking TBB (the concurrency query is a library call
// that costs as much as a tiny slice), else the arena's (nullptr: the current arena's) concurrency.
int run_concurrency(const plan_state& s, tbb::task_arena* arena);

// Executes a validated run in `arena` (nullptr: the current arena). No heap allocation, no thread creation.
void execute(const plan_state& s, const run_buffers& b, tbb::task_arena* arena);

// The layout::nhwc part of execute (lib/scheduler_nhwc.cpp).
void execute_nhwc(const plan_state& s, const run_buffers& b, tbb::task_arena* arena);

}  // namespace groupnorm::detail
