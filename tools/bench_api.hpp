// `groupnorm bench --api c|c-plan`: the per-call time of a C ABI entry point beside plan::run on the same
// buffers, interleaved, with the entry point's budget over plan::run.
#pragma once

#include <cstddef>
#include <string>

#include <oneapi/tbb/task_arena.h>

#include "groupnorm/groupnorm.hpp"

namespace groupnorm::tool {

// What one comparison measured.
struct api_timing {
  double api_us;     // median per call of the entry point
  double plan_us;    // median per call of plan::run, sampled interleaved with it
  double budget_us;  // allowed excess over plan::run
  bool same_bits;    // the entry point wrote plan::run's bits
};

// api: c (gn_group_norm_f32, or gn_group_norm_ex for a layout or activation) or c-plan (gn_plan_run on a
// gn_arena). Checks that `api` writes plan::run's bits into y, then times it against plan::run (both in
// arenas of `threads` threads, on the same x, y, gamma, beta). y.data() == x.data() runs in place.
api_timing time_api(const std::string& api, const plan& pl, const float* x, float* y, const float* gamma,
                    const float* beta, tbb::task_arena& arena, int threads, double seconds);

}  // namespace groupnorm::tool
