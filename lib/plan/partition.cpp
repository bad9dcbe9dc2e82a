// The plan's schedule decisions: the fixed partition of every reduction (NCHW chunks, NHWC blocks, row
// chunks and group units), the kernel family and whether outputs stream. They depend on the shape only,
// never on the thread count, so every arena computes the same reduction tree.
#include <algorithm>
#include <cstddef>
#include <numeric>

#include "kernels/dispatch.hpp"
#include "plan/environment.hpp"
#include "plan/plan_state.hpp"

namespace groupnorm::detail {
namespace {

constexpr std::size_t simd_width_for_plan = 16;  // lanes of the kernels' vf (simd/simd.hpp)

// NCHW: chunks of at least kMinChunkElems, grown (in whole blocks) so a slice has at most kMaxChunks.
void partition_nchw(plan_state& s) {
  const std::size_t by_cap = (s.slice_elems + kMaxChunks - 1) / kMaxChunks;
  s.chunk_elems = std::max(kMinChunkElems, (by_cap + kBlockElems - 1) / kBlockElems * kBlockElems);
  s.chunks_per_slice = s.slice_elems == 0 ? 0 : (s.slice_elems + s.chunk_elems - 1) / s.chunk_elems;
}

// NHWC partition (see plan_state): block rows so a block holds ~kNhwcBlockElems elements of a sub-tile
// (within [kNhwcMinBlockRows, kNhwcMaxBlockRows] rows, whole virtual rows when packed), chunks of
// ~kNhwcChunkElems elements in whole blocks, grown when needed so a row-split run's partials fit
// kNhwcMaxPartials.
void partition_nhwc(plan_state& s) {
  const problem& p = s.desc;
  const std::size_t C = p.channels, cpg = s.channels_per_group, G = p.num_groups;
  nhwc_geometry& geo = s.nhwc_geo;
  geo.channels = C;
  geo.cpg = cpg;
  geo.lanes = 0;
  std::size_t width = C;  // channels of the widest sub-tile
  if (C > kNhwcTile) width = cpg <= kNhwcTile ? kNhwcTile / cpg * cpg : kNhwcTile;
  std::size_t reps = 1;
  if (C % simd_width_for_plan != 0 && C <= kNhwcMaxLanes) {
    const std::size_t lanes = std::lcm(C, simd_width_for_plan);
    if (lanes <= kNhwcMaxLanes) geo.lanes = lanes, reps = lanes / C;
  }
  // A lane sums one element per virtual row (reps rows): at most kNhwcMaxBlockRows of them.
  const std::size_t rows =
      std::clamp((kNhwcBlockElems + width - 1) / width, kNhwcMinBlockRows, kNhwcMaxBlockRows * reps);
  geo.block_rows = (rows + reps - 1) / reps * reps;

  s.nhwc_unit_groups = geo.lanes != 0 ? G : std::min(G, kNhwcUnitGroups);
  s.nhwc_units = (G + s.nhwc_unit_groups - 1) / s.nhwc_unit_groups;
  if (p.spatial == 0 || p.batch == 0) return;  // nothing to run
  const std::size_t R = geo.block_rows;
  std::size_t chunk_rows = std::max<std::size_t>(1, kNhwcChunkElems / C);
  chunk_rows = (chunk_rows + R - 1) / R * R;
  std::size_t chunks = (p.spatial + chunk_rows - 1) / chunk_rows;
  const std::size_t max_chunks = std::max<std::size_t>(1, kNhwcMaxPartials / s.pairs);
  if (chunks > max_chunks) {
    chunk_rows = ((p.spatial + max_chunks - 1) / max_chunks + R - 1) / R * R;
    chunks = (p.spatial + chunk_rows - 1) / chunk_rows;
  }
  s.nhwc_chunk_rows = chunk_rows;
  s.nhwc_chunks = chunks;
}

}  // namespace

plan_state make_plan_state(const problem& p, direction dir) {
  check_environment();
  const problem_sizes n = validate_problem(p);
  plan_state s;
  s.desc = p;
  s.dir = dir;
  s.channels_per_group = p.channels / p.num_groups;
  s.elem_size = n.elem_size;
  s.total = n.total;
  s.pairs = n.pairs;
  s.slice_elems = s.total == 0 ? 0 : s.channels_per_group * p.spatial;  // <= total when total != 0
  partition_nchw(s);
  if (p.memory_layout == layout::nhwc) partition_nhwc(s);
  const kernel_choice k = choose_kernels(p.kernel_isa);
  s.family = k.family;
  s.kernels = k.table;
  s.stream_output = n.total_bytes >= process_environment().stream_bytes;
  return s;
}

}  // namespace groupnorm::detail
