// The memory floor of `groupnorm bench`: copies of the same bytes by several strategies, each timed alone,
// and the consumer that reads y after a run (what a following layer pays).
#pragma once

#include <cstddef>
#include <iterator>
#include <vector>

#include <oneapi/tbb/task_arena.h>

#include "timing.hpp"

namespace groupnorm::tool {

enum class copy_strategy {
  share_memcpy,  // one memcpy per thread share
  pieces,        // memcpy in 256 KiB pieces spread over the arena
  nontemporal,   // per thread share, a loop of non-temporal (streaming) stores
};
inline constexpr copy_strategy kCopyStrategies[] = {copy_strategy::share_memcpy, copy_strategy::pieces,
                                                    copy_strategy::nontemporal};
const char* to_string(copy_strategy s);

// Copies n floats (64-byte aligned buffers) in `arena` by strategy s; on the calling thread below the
// library's serial threshold, as a GroupNorm run of that size would be.
void floor_copy(copy_strategy s, tbb::task_arena& arena, float* dst, const float* src, std::size_t n);

// Reads the n floats of y in `arena`, each thread its share (the partition of share_memcpy), and returns
// their sum so the reads cannot be dropped.
float consume(tbb::task_arena& arena, const float* y, std::size_t n);

struct floor_timing {
  copy_strategy best;  // the strategy with the lowest median
  timing best_time;    // its timing
  timing per_strategy[std::size(kCopyStrategies)];
};

// A GroupNorm run against the floor: the run alone and every copy strategy alone, in alternating blocks
// (three rounds, so a change of machine load hits both sides); with `consumer`, each run and each copy is
// followed by a read of y inside the timed region.
struct floor_measurement {
  timing run;  // GroupNorm alone
  floor_timing floor;
  double ratio;   // run median / fastest copy median
  bool consumer;  // the figures include the read of y
};

template <class Run>
floor_measurement measure_against_floor(tbb::task_arena& arena, Run&& run, float* y, const float* x,
                                        std::size_t n, double seconds, bool consumer) {
  volatile float sink = 0;  // keeps the consumer's reads
  auto after = [&] {
    if (consumer) sink = sink + consume(arena, y, n);
  };
  std::vector<double> run_samples;
  std::vector<double> copy_samples[std::size(kCopyStrategies)];
  for (int round = 0; round < 3; ++round) {
    for (double v : sample_alone(
             [&] {
               run();
               after();
             },
             seconds / 6))
      run_samples.push_back(v);
    for (std::size_t i = 0; i < std::size(kCopyStrategies); ++i)
      for (double v : sample_alone(
               [&] {
                 floor_copy(kCopyStrategies[i], arena, y, x, n);
                 after();
               },
               seconds / 6 / std::size(kCopyStrategies)))
        copy_samples[i].push_back(v);
  }
  floor_measurement m{summarize(run_samples), {}, 0.0, consumer};
  for (std::size_t i = 0; i < std::size(kCopyStrategies); ++i) {
    m.floor.per_strategy[i] = summarize(copy_samples[i]);
    if (i == 0 || m.floor.per_strategy[i].median_s < m.floor.best_time.median_s) {
      m.floor.best = kCopyStrategies[i];
      m.floor.best_time = m.floor.per_strategy[i];
    }
  }
  m.ratio = m.run.median_s / m.floor.best_time.median_s;
  return m;
}

}  // namespace groupnorm::tool
