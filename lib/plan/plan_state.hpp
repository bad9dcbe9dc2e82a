// The plan stage's product: the validated, immutable state behind a plan, and the buffers of one run.
#pragma once

#include <cstddef>
#include <string>

#include "entry.hpp"
#include "groupnorm/groupnorm.hpp"
#include "kernels/kernels.hpp"
#include "plan/tuning.hpp"

namespace groupnorm::detail {

struct plan_state {
  problem desc;
  // What the plan computes (entry.hpp); execute() starts that direction's schedule.
  direction dir = direction::forward;
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
  isa family = isa::scalar;    // the kernel family runs use (never automatic)
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

// What a valid problem measures.
struct problem_sizes {
  std::size_t total = 0;        // batch * channels * spatial
  std::size_t total_bytes = 0;  // of x
  std::size_t pairs = 0;        // batch * num_groups
  std::size_t elem_size = 0;    // bytes per stored element
};

// Every validation message of the plan stage: throws groupnorm::invalid_argument("groupnorm: " + what).
[[noreturn]] void fail(const std::string& what);

// Checks every field of a problem (throws groupnorm::invalid_argument). lib/plan/validate.cpp.
problem_sizes validate_problem(const problem& p);

// Validates a problem and fixes its schedule (throws groupnorm::invalid_argument). No heap allocation.
// lib/plan/partition.cpp.
plan_state make_plan_state(const problem& p, direction dir = direction::forward);

// Validates the buffers of a run against the plan (sizes, presence, aliasing); throws before anything is
// written. lib/plan/validate.cpp.
void validate_run(const plan_state& s, const run_buffers& b, const buffer_sizes& n);

}  // namespace groupnorm::detail
