// The golden suite: which problems it runs, how their inputs are made and how their outputs are hashed.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <oneapi/tbb/task_arena.h>

#include "groupnorm/groupnorm.hpp"

namespace golden {

// A bench-like shape, trimmed so the whole suite runs in seconds under qemu.
struct shape {
  const char* name;
  std::size_t batch, channels, spatial, groups;
  bool affine;  // gamma and beta given (else absent: 1 and 0)
};

enum class residual_mode { none, residual, residual_and_sum };

struct case_spec {
  shape s;
  groupnorm::layout memory_layout;
  groupnorm::dtype data_type;
  groupnorm::activation fused_activation;
  residual_mode residual;
  std::string name() const;  // e.g. "tiny_1x32x64_g8/nhwc/f16/gelu/residual+sum"
};

// Every shape x layout x dtype x activation x residual mode, in a fixed order.
std::vector<case_spec> suite();

// Runs the case on `family` and returns the hashes of y, mean, rstd and sum ("-" when absent), separated by
// spaces.
std::string run_case(const case_spec& c, groupnorm::isa family, tbb::task_arena& arena);

bool parse_isa(const std::string& name, groupnorm::isa& out);
// The family a plan of `family` runs on (resolves `automatic`).
std::string selected_name(groupnorm::isa family);

}  // namespace golden
