// Tuning constants of the plan and the schedule: the sizes that fix the partition of every reduction and
// when a run goes parallel. Each comment says why the value is what it is.
#pragma once

#include <cstddef>

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
// lines: below it the next layer finds y in the last-level cache, so cached stores win; far above it
// streaming saves the read-for-ownership and wins (`groupnorm bench --consumer`, docs/performance-notes.md).
// GROUPNORM_STREAM_BYTES overrides it (lib/plan/environment.cpp).
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
// rows, and a block has at least 128 rows, what an NCHW block sums per lane (docs/performance-notes.md).
inline constexpr std::size_t kNhwcBlockElems = 64 * 1024;
inline constexpr std::size_t kNhwcMinBlockRows = 128;
inline constexpr std::size_t kNhwcMaxBlockRows = 1024;

}  // namespace groupnorm::detail
