// `groupnorm bench --api`: a C ABI entry point timed beside plan::run.
#include "bench_api.hpp"

#include <cstring>
#include <span>
#include <stdexcept>
#include <vector>

#include "groupnorm/groupnorm.h"
#include "timing.hpp"

namespace groupnorm::tool {

namespace {

// Budgets over plan::run: what a one-shot call may add (CPU detection and planning done once per process,
// the last plan reused, the arena looked up without a lock), and what a prepared C plan may add (reading
// gn_tensors and translating C status).
constexpr double kOneShotBudgetUs = 0.15;
constexpr double kCPlanBudgetUs = 0.03;

[[noreturn]] void fail(const char* what) {
  throw std::runtime_error(std::string("groupnorm bench --api: ") + what + ": " + gn_last_error());
}

}  // namespace

api_timing time_api(const std::string& api, const plan& pl, const float* x, float* y, const float* gamma,
                    const float* beta, tbb::task_arena& arena, int threads, double seconds) {
  const problem& p = pl.description();
  const std::size_t n = pl.element_count();
  const bool in_place = x == y;
  const std::span<const float> g(gamma, gamma ? p.channels : 0), b(beta, beta ? p.channels : 0);
  // plan::run's bits, from the data x holds now.
  std::vector<float> expected(x, x + n), scratch(x, x + n);
  pl.run_inplace(expected, g, b, &arena);
  // In place, both sides normalize their own copy (the data drifts toward N(0, 1) after the first call; same
  // cost); out of place, both write y from x.
  const float* in = in_place ? scratch.data() : x;
  float* out = in_place ? scratch.data() : y;
  auto plan_run = [&] { pl.run(std::span<const float>(in, n), std::span<float>(out, n), g, b, &arena); };

  gn_problem cp;
  gn_problem_init(&cp);
  cp.batch = p.batch;
  cp.channels = p.channels;
  cp.spatial = p.spatial;
  cp.num_groups = p.num_groups;
  cp.epsilon = p.epsilon;
  cp.layout = static_cast<gn_layout>(p.memory_layout);
  cp.activation = static_cast<gn_activation>(p.fused_activation);
  gn_plan* c_plan = nullptr;
  gn_arena* c_arena = nullptr;
  if (gn_plan_create(&cp, &c_plan) != GN_OK) fail("gn_plan_create");
  if (gn_arena_create(threads, &c_arena) != GN_OK) fail("gn_arena_create");
  gn_tensors t;
  gn_tensors_init(&t);
  t.gamma = gamma;
  t.beta = beta;
  gn_options options;
  gn_options_init(&options);
  options.layout = cp.layout;
  options.activation = cp.activation;
  options.num_threads = threads;
  const bool plain = p.memory_layout == layout::nchw && p.fused_activation == activation::none;

  auto api_run = [&](const float* src, float* dst) {
    gn_status st = GN_OK;
    if (api == "c-plan") {
      t.x = src;
      t.y = dst;
      st = gn_plan_run(c_plan, &t, c_arena);
    } else if (plain) {
      st = gn_group_norm_f32(src, dst, gamma, beta, p.batch, p.channels, p.spatial, p.num_groups, p.epsilon,
                             threads);
    } else {
      st = gn_group_norm_ex(src, dst, gamma, beta, p.batch, p.channels, p.spatial, p.num_groups, p.epsilon,
                            &options);
    }
    if (st != GN_OK) fail(api.c_str());
  };

  // Verification: the entry point writes plan::run's bits.
  std::vector<float> check(x, x + n);
  if (in_place)
    api_run(check.data(), check.data());
  else
    api_run(x, check.data());
  const bool same = std::memcmp(check.data(), expected.data(), n * sizeof(float)) == 0;

  std::vector<float> api_scratch(x, x + (in_place ? n : 0));
  auto api_call = [&] { in_place ? api_run(api_scratch.data(), api_scratch.data()) : api_run(x, out); };
  const auto [ta, tp] = sample_pair(api_call, plan_run, seconds);
  gn_plan_destroy(c_plan);
  gn_arena_destroy(c_arena);
  return {ta.median_s * 1e6, tp.median_s * 1e6, api == "c-plan" ? kCPlanBudgetUs : kOneShotBudgetUs, same};
}

}  // namespace groupnorm::tool
