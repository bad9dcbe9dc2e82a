// `groupnorm bench` (tools/bench.cpp times, tools/bench_cli.cpp parses its command line): the options the
// parser fills in.
#pragma once

#include <string>
#include <vector>

#include "bench_suite.hpp"
#include "groupnorm/groupnorm.hpp"

namespace groupnorm::tool::bench_command {

using shape = bench_shape;

struct options {
  std::vector<shape> shapes;
  std::vector<int> threads;
  bool inplace = false;
  layout memory_layout = layout::nchw;
  std::string json;
  isa kernel = isa::automatic;
  activation act = activation::none;  // problem::fused_activation
  double seconds = 0.25;              // sampling time per (shape, threads)
  bool backward = false;              // --direction backward (tools/bench_backward.cpp)
  bool consumer = false;              // --consumer: each run and copy followed by a read of y
  std::string api = "cpp";            // entry point timed beside plan::run (bench_api.hpp)
};

// Runs the benchmark; returns the exit status (throws groupnorm::invalid_argument for a shape or family the
// library rejects).
int run(options o);

}  // namespace groupnorm::tool::bench_command
