// `groupnorm bench --direction backward`: the backward pass timed against its memory floor.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "groupnorm/groupnorm.hpp"

namespace groupnorm::tool {

struct backward_bench_shape {
  std::string name;
  std::size_t batch, channels, spatial, groups;
};

struct backward_bench_options {
  std::vector<backward_bench_shape> shapes;
  std::vector<int> threads;
  layout memory_layout = layout::nchw;
  activation act = activation::none;
  isa kernel = isa::automatic;
  double seconds = 0.25;
  std::string json;  // also write the rows here when non-empty
};

// Checks each shape's gradients against a float64 reference, then times plan::run_backward (saved
// statistics given, every gradient computed) against a memcpy of 1.5 times the forward's bytes (x and dy
// read, dx written) in the same arena, interleaved. Returns the exit status (1: a mismatch or an unwritable
// --json).
int bench_backward(const backward_bench_options& o);

}  // namespace groupnorm::tool
