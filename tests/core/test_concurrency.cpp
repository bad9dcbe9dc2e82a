// Many caller threads at once: plans are immutable and runs reentrant, so concurrent runs into one shared
// arena (or through one shared plan object) give exactly the serial bits.
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include <oneapi/tbb/task_arena.h>

#include "groupnorm/groupnorm.h"
#include "test_util.hpp"

using namespace gn_test;

namespace {

// A mixed workload: tiny (calling thread), many pairs (whole slices per task), split (one slice over the
// arena).
struct job {
  shape s;
  std::vector<float> x, gamma, beta, expected;
  std::unique_ptr<groupnorm::plan> pl;
};

std::vector<job> make_jobs() {
  const shape shapes[] = {
      {1, 32, 64, 8}, {2, 64, 16 * 16, 32}, {1, 8, 128 * 128, 1}, {3, 10, 15, 5}, {1, 4, 20000, 2}};
  std::vector<job> jobs;
  std::uint64_t seed = 1;
  tbb::task_arena serial(1);
  for (const shape& s : shapes) {
    job j;
    j.s = s;
    j.x = normal(s.elements(), seed++, 1.0, 2.0);
    j.gamma = uniform(s.channels, seed++, 0.5, 1.5);
    j.beta = uniform(s.channels, seed++, -1.0, 1.0);
    j.pl = std::make_unique<groupnorm::plan>(make_problem(s));
    j.expected.assign(j.x.size(), 0.0f);
    j.pl->run(j.x, j.expected, j.gamma, j.beta, &serial);
    jobs.push_back(std::move(j));
  }
  return jobs;
}

constexpr int kCallers = 8;
constexpr int kIterations = 60;

}  // namespace

TEST_CASE("8 caller threads sharing one 2-thread arena with mixed shapes give the serial bits every time") {
  const std::vector<job> jobs = make_jobs();
  tbb::task_arena shared(2);
  std::atomic<int> mismatches{0}, runs{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < kCallers; ++t) {
    callers.emplace_back([&, t] {
      std::vector<std::vector<float>> ys;
      for (const job& j : jobs) ys.emplace_back(j.x.size());
      for (int it = 0; it < kIterations; ++it) {
        const std::size_t k = static_cast<std::size_t>(t + it) % jobs.size();
        const job& j = jobs[k];
        // Each caller builds its own plan for half of the runs and uses the shared one for the rest.
        if (it % 2 == 0) {
          const groupnorm::plan own(make_problem(j.s));
          own.run(j.x, ys[k], j.gamma, j.beta, &shared);
        } else {
          j.pl->run(j.x, ys[k], j.gamma, j.beta, &shared);
        }
        if (!same_bits(ys[k], j.expected)) ++mismatches;
        ++runs;
      }
    });
  }
  for (std::thread& c : callers) c.join();
  CHECK(runs.load() == kCallers * kIterations);
  CHECK(mismatches.load() == 0);
}

TEST_CASE(
    "8 caller threads sharing a single plan object in their own arenas give the serial bits every time") {
  const std::vector<job> jobs = make_jobs();
  const job& split = jobs[2];  // 1x8x16384 G=1: a split slice
  std::atomic<int> mismatches{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < kCallers; ++t) {
    callers.emplace_back([&, t] {
      std::vector<float> y(split.x.size());
      tbb::task_arena own(1 + t % 3);
      for (int it = 0; it < kIterations; ++it) {
        // Alternate the caller's implicit arena and an explicit one.
        split.pl->run(split.x, y, split.gamma, split.beta, it % 2 ? &own : nullptr);
        if (!same_bits(y, split.expected)) ++mismatches;
      }
    });
  }
  for (std::thread& c : callers) c.join();
  CHECK(mismatches.load() == 0);
}

TEST_CASE("concurrent C API callers with different num_threads give the serial bits every time") {
  const std::vector<job> jobs = make_jobs();
  std::atomic<int> mismatches{0}, failures{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < kCallers; ++t) {
    callers.emplace_back([&, t] {
      for (int it = 0; it < kIterations; ++it) {
        const job& j = jobs[static_cast<std::size_t>(t * 7 + it) % jobs.size()];
        std::vector<float> y(j.x.size());
        // num_threads 0..4: arenas are created on first use by whichever caller gets there first.
        if (gn_group_norm_f32(j.x.data(), y.data(), j.gamma.data(), j.beta.data(), j.s.batch, j.s.channels,
                              j.s.spatial, j.s.groups, 1e-5f, (t + it) % 5) != GN_OK ||
            gn_last_error()[0] != '\0')
          ++failures;
        if (!same_bits(y, j.expected)) ++mismatches;
      }
    });
  }
  for (std::thread& c : callers) c.join();
  CHECK(failures.load() == 0);
  CHECK(mismatches.load() == 0);
}
