// Zero heap allocation per backward run on a prepared plan: plan::run_backward (explicit and current arena)
// and gn_plan_run_backward (NULL arena and a gn_arena), counted as in zero_alloc.cpp (operator new, the
// malloc family outside sanitizer builds, and mmap), with the scratch on the stack or in the caller's
// workspace.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include <oneapi/tbb/info.h>
#include <oneapi/tbb/task_arena.h>

#include "alloc_hooks.hpp"
#include "common.hpp"
#include "groupnorm/groupnorm.h"
#include "groupnorm/groupnorm.hpp"

namespace {

struct backward_case {
  const char* name;
  std::size_t batch, channels, spatial, groups;
  bool given_stats;
};

// tiny (calling thread), one slice split over the arena (recomputed statistics), many pairs, and a scratch
// beyond the stack bound (2 * 8 * (1024 + 64) doubles: the caller's workspace).
const backward_case kBackwardCases[] = {
    {"tiny_b1_c32_8x8", 1, 32, 64, 8, true},
    {"split_g1_b1_c64_128x128", 1, 64, 128 * 128, 1, false},
    {"pairs_b4_c64_56x56_g64", 4, 64, 56 * 56, 64, true},
    {"workspace_b8_c1024_2x2_g32", 8, 1024, 4, 32, true},
};

constexpr int kCountedBackwardRuns = gn_stress::kEmulated ? 5 : 30;

enum backward_entry : int { cpp_arena, cpp_current, c_plan_current, c_plan_arena, kBackwardEntries };
const char* const kBackwardEntryNames[] = {
    "plan::run_backward, explicit arena", "plan::run_backward, current arena",
    "gn_plan_run_backward, NULL arena", "gn_plan_run_backward, gn_arena"};

struct backward_bufs {
  std::vector<float> x, dy, gamma, mean, rstd, dx, dgamma, dbeta, expected_dx, expected_dgamma;
  std::vector<double> workspace;
};

}  // namespace

TEST_CASE("a backward run through every plan entry point performs zero heap allocations") {
  tbb::task_arena arena(tbb::info::default_concurrency());
  arena.initialize();
  gn_arena* c_arena = nullptr;
  REQUIRE(gn_arena_create(0, &c_arena) == GN_OK);
  std::vector<groupnorm::plan> plans;
  std::vector<gn_plan*> c_plans;
  std::vector<backward_bufs> data;
  for (const backward_case& c : kBackwardCases) {
    groupnorm::problem p;
    p.batch = c.batch;
    p.channels = c.channels;
    p.spatial = c.spatial;
    p.num_groups = c.groups;
    plans.emplace_back(p);
    gn_problem cp;
    gn_problem_init(&cp);
    cp.batch = c.batch;
    cp.channels = c.channels;
    cp.spatial = c.spatial;
    cp.num_groups = c.groups;
    c_plans.push_back(nullptr);
    REQUIRE(gn_plan_create(&cp, &c_plans.back()) == GN_OK);
    const std::size_t n = c.batch * c.channels * c.spatial;
    backward_bufs b;
    b.x.resize(n);
    b.dy.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      b.x[i] = static_cast<float>((i * 131) % 1009) * 0.01f;
      b.dy[i] = static_cast<float>((i * 37) % 211) * 0.01f - 1.0f;
    }
    b.gamma.assign(c.channels, 1.25f);
    b.dx.resize(n);
    b.dgamma.resize(c.channels);
    b.dbeta.resize(c.channels);
    b.workspace.resize(plans.back().backward_workspace_size());
    if (c.given_stats) {
      std::vector<float> y(n);
      b.mean.resize(c.batch * c.groups);
      b.rstd.resize(c.batch * c.groups);
      plans.back().run(
          groupnorm::tensors<float>{.x = b.x, .y = y, .gamma = b.gamma, .mean = b.mean, .rstd = b.rstd});
    }
    data.push_back(std::move(b));
  }
  auto run = [&](std::size_t i, int how) {
    backward_bufs& b = data[i];
    const groupnorm::backward_tensors<float> t{.x = b.x,
                                               .dy = b.dy,
                                               .gamma = b.gamma,
                                               .mean = b.mean,
                                               .rstd = b.rstd,
                                               .dx = b.dx,
                                               .dgamma = b.dgamma,
                                               .dbeta = b.dbeta,
                                               .workspace = b.workspace};
    gn_backward_tensors ct;
    gn_backward_tensors_init(&ct);
    ct.x = b.x.data();
    ct.dy = b.dy.data();
    ct.gamma = b.gamma.data();
    ct.mean = b.mean.empty() ? nullptr : b.mean.data();
    ct.rstd = b.rstd.empty() ? nullptr : b.rstd.data();
    ct.dx = b.dx.data();
    ct.dgamma = b.dgamma.data();
    ct.dbeta = b.dbeta.data();
    ct.workspace = b.workspace.empty() ? nullptr : b.workspace.data();
    switch (how) {
      case cpp_arena:
        plans[i].run_backward(t, &arena);
        break;
      case cpp_current:
        arena.execute([&] { plans[i].run_backward(t); });
        break;
      case c_plan_current:
        arena.execute([&] { REQUIRE(gn_plan_run_backward(c_plans[i], &ct, nullptr) == GN_OK); });
        break;
      default:
        REQUIRE(gn_plan_run_backward(c_plans[i], &ct, c_arena) == GN_OK);
    }
  };
  // Warm-up: TBB creates its workers, task pools and per-thread data on first use.
  for (int w = 0; w < 5; ++w)
    for (std::size_t i = 0; i < plans.size(); ++i)
      for (int how = 0; how < kBackwardEntries; ++how) run(i, how);
  for (backward_bufs& b : data) b.expected_dx = b.dx, b.expected_dgamma = b.dgamma;

  for (std::size_t i = 0; i < plans.size(); ++i) {
    for (int how = 0; how < kBackwardEntries; ++how) {
      backward_bufs& b = data[i];
      std::fill(b.dx.begin(), b.dx.end(), 0.0f);
      std::fill(b.dgamma.begin(), b.dgamma.end(), 0.0f);
      const gn_alloc::counts start = gn_alloc::counts_now();
      for (int r = 0; r < kCountedBackwardRuns; ++r) run(i, how);
      // Read before anything else here allocates (the message below does).
      const gn_alloc::counts n = gn_alloc::counts_since(start);
      const std::string where = std::string(kBackwardCases[i].name) + " (" + kBackwardEntryNames[how] + ")";
      INFO(where);
      CHECK(n.news == 0);
      CHECK(n.mallocs == 0);
      CHECK(n.mmaps == 0);
      CHECK(std::memcmp(b.dx.data(), b.expected_dx.data(), b.dx.size() * sizeof(float)) == 0);
      CHECK(std::memcmp(b.dgamma.data(), b.expected_dgamma.data(), b.dgamma.size() * sizeof(float)) == 0);
    }
  }
  for (gn_plan* p : c_plans) gn_plan_destroy(p);
  gn_arena_destroy(c_arena);
}
