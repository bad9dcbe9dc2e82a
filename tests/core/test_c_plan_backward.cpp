// The backward through the C plan API (gn_backward_tensors, gn_plan_run_backward,
// gn_plan_backward_workspace_size): the bits of plan::run_backward for each dtype, layout and activation at
// every arena size, saved or recomputed statistics, the caller's workspace, struct_size versioning, and every
// error leaving the outputs untouched.
#include <cstddef>
#include <string>
#include <vector>

#include "backward_util.hpp"
#include "groupnorm/groupnorm.h"
#include "test_util.hpp"

using namespace gn_test;

namespace {

constexpr float kUnwritten = -777.0f;

struct owned_plan {
  gn_plan* plan = nullptr;
  ~owned_plan() { gn_plan_destroy(plan); }
};
struct owned_arena {
  gn_arena* arena = nullptr;
  ~owned_arena() { gn_arena_destroy(arena); }
};

gn_problem c_problem(const groupnorm::problem& p) {
  gn_problem c;
  gn_problem_init(&c);
  c.batch = p.batch;
  c.channels = p.channels;
  c.spatial = p.spatial;
  c.num_groups = p.num_groups;
  c.epsilon = p.epsilon;
  c.layout = p.memory_layout == groupnorm::layout::nhwc ? GN_LAYOUT_NHWC : GN_LAYOUT_NCHW;
  c.dtype = static_cast<gn_dtype>(static_cast<int>(p.data_type));
  c.activation = static_cast<gn_activation>(static_cast<int>(p.fused_activation));
  return c;
}

// The forward's statistics of p on x, as the forward saves them.
template <class T>
void forward_stats(const groupnorm::problem& p, const std::vector<T>& x, const std::vector<float>& gamma,
                   const std::vector<float>& beta, std::vector<float>& mean, std::vector<float>& rstd) {
  std::vector<T> y(x.size());
  mean.assign(p.batch * p.num_groups, 0.0f);
  rstd.assign(p.batch * p.num_groups, 0.0f);
  groupnorm::plan(p).run(
      groupnorm::tensors<T>{.x = x, .y = y, .gamma = gamma, .beta = beta, .mean = mean, .rstd = rstd});
}

// gn_plan_run_backward on arenas of 1, 2 and 3 threads (and the caller's arena) against plan::run_backward.
template <class T>
void check_same_bits(const groupnorm::problem& p, bool given_stats) {
  const std::size_t n = p.batch * p.channels * p.spatial;
  const std::vector<T> x = encode<T>(normal(n, 11, 0.5, 2.0)), dy = encode<T>(normal(n, 12));
  const std::vector<float> gamma = normal(p.channels, 13, 1.0, 0.2), beta = normal(p.channels, 14);
  std::vector<float> mean, rstd;
  if (given_stats) forward_stats(p, x, gamma, beta, mean, rstd);
  const bw::result<T> want = bw::run<T>(p, x, dy, gamma, beta, mean, rstd);
  const gn_problem cp = c_problem(p);
  owned_plan plan;
  REQUIRE(gn_plan_create(&cp, &plan.plan) == GN_OK);
  std::vector<double> workspace(gn_plan_backward_workspace_size(plan.plan));
  for (int threads : {0, 1, 2, 3}) {
    CAPTURE(threads);
    owned_arena arena;
    if (threads > 0) REQUIRE(gn_arena_create(threads, &arena.arena) == GN_OK);
    std::vector<T> dx(n, storage<T>::from(kUnwritten));
    std::vector<float> dgamma(p.channels, kUnwritten), dbeta(p.channels, kUnwritten);
    gn_backward_tensors t;
    gn_backward_tensors_init(&t);
    t.x = x.data();
    t.dy = dy.data();
    t.gamma = gamma.data();
    t.beta = beta.data();
    t.mean = given_stats ? mean.data() : nullptr;
    t.rstd = given_stats ? rstd.data() : nullptr;
    t.dx = dx.data();
    t.dgamma = dgamma.data();
    t.dbeta = dbeta.data();
    t.workspace = workspace.empty() ? nullptr : workspace.data();
    REQUIRE(gn_plan_run_backward(plan.plan, &t, arena.arena) == GN_OK);
    CHECK(first_bit_difference(dx, want.dx) == -1);
    CHECK(first_bit_difference(dgamma, want.dgamma) == -1);
    CHECK(first_bit_difference(dbeta, want.dbeta) == -1);
  }
}

}  // namespace

TEST_CASE("gn_plan_run_backward gives the bits of plan::run_backward at every arena size") {
  SUBCASE("NCHW f32, saved statistics") {
    check_same_bits<float>(make_problem({2, 64, 1024, 8}), true);
  }
  SUBCASE("NCHW f32, recomputed statistics, G = 1 split over the arena") {
    check_same_bits<float>(make_problem({1, 16, 20000, 1}), false);
  }
  SUBCASE("NHWC f16 with SiLU") {
    groupnorm::problem p = make_problem({2, 12, 400, 3});
    p.memory_layout = groupnorm::layout::nhwc;
    p.data_type = groupnorm::dtype::f16;
    p.fused_activation = groupnorm::activation::silu;
    check_same_bits<groupnorm::f16>(p, true);
  }
  SUBCASE("NCHW bf16 with GELU, scratch in the caller's workspace") {
    groupnorm::problem p = make_problem({8, 1024, 8, 32});
    p.data_type = groupnorm::dtype::bf16;
    p.fused_activation = groupnorm::activation::gelu;
    check_same_bits<groupnorm::bf16>(p, false);
  }
}

TEST_CASE("gn_backward_tensors_init and gn_plan_backward_workspace_size") {
  gn_backward_tensors t;
  gn_backward_tensors_init(&t);
  CHECK(t.struct_size == sizeof(gn_backward_tensors));
  CHECK(t.x == nullptr);
  CHECK(t.workspace == nullptr);
  gn_backward_tensors_init(nullptr);  // a no-op
  CHECK(gn_plan_backward_workspace_size(nullptr) == 0);
  owned_plan small, large;
  const gn_problem ps = c_problem(make_problem({2, 32, 64, 8}));
  const gn_problem pl = c_problem(make_problem({8, 1024, 4, 32}));
  REQUIRE(gn_plan_create(&ps, &small.plan) == GN_OK);
  REQUIRE(gn_plan_create(&pl, &large.plan) == GN_OK);
  CHECK(gn_plan_backward_workspace_size(small.plan) == 0);
  CHECK(gn_plan_backward_workspace_size(large.plan) == 2 * 8 * (1024 + 2 * 32));
}

TEST_CASE("gn_plan_run_backward errors return GN_INVALID_ARGUMENT naming the problem and write nothing") {
  const groupnorm::problem p = make_problem({8, 1024, 4, 32});  // needs a workspace of 17408 doubles
  const std::size_t n = 8 * 1024 * 4;
  const gn_problem cp = c_problem(p);
  owned_plan plan;
  REQUIRE(gn_plan_create(&cp, &plan.plan) == GN_OK);
  const std::vector<float> x = normal(n, 21), dy = normal(n, 22);
  std::vector<float> dx(n, kUnwritten), dgamma(1024, kUnwritten), mean(8 * 32, 0.0f);
  std::vector<double> workspace(gn_plan_backward_workspace_size(plan.plan));
  auto untouched = [&] {
    for (float v : dx)
      if (v != kUnwritten) return false;
    for (float v : dgamma)
      if (v != kUnwritten) return false;
    return true;
  };
  gn_backward_tensors t;
  gn_backward_tensors_init(&t);
  t.x = x.data();
  t.dy = dy.data();
  t.dx = dx.data();
  t.dgamma = dgamma.data();
  auto fails_with = [&](const gn_plan* pl, const gn_backward_tensors* tt, const std::string& text) {
    CHECK(gn_plan_run_backward(pl, tt, nullptr) == GN_INVALID_ARGUMENT);
    const std::string error = gn_last_error();
    CHECK_MESSAGE(error.find(text) != std::string::npos, error);
    CHECK(untouched());
  };
  SUBCASE("a missing workspace") {
    fails_with(plan.plan, &t, "workspace has 0 doubles, expected at least 17408");
  }
  t.workspace = workspace.data();
  SUBCASE("null plan or tensors") {
    fails_with(nullptr, &t, "plan is null");
    fails_with(plan.plan, nullptr, "tensors is null");
  }
  SUBCASE("a null dy") {
    t.dy = nullptr;
    fails_with(plan.plan, &t, "dy");
  }
  SUBCASE("no output asked for") {
    t.dx = nullptr;
    t.dgamma = nullptr;
    fails_with(plan.plan, &t, "dx");
  }
  SUBCASE("mean without rstd") {
    t.mean = mean.data();
    fails_with(plan.plan, &t, "rstd");
  }
  SUBCASE("dx overlapping x") {
    t.dx = const_cast<float*>(x.data()) + 1;
    fails_with(plan.plan, &t, "overlap");
  }
  SUBCASE("a struct_size of no known version") {
    t.struct_size = sizeof(gn_backward_tensors) - 3;
    fails_with(plan.plan, &t, "struct_size");
  }
}

TEST_CASE("an older header's gn_backward_tensors without workspace runs a plan that needs none") {
  const groupnorm::problem p = make_problem({2, 32, 64, 8});
  const std::size_t n = 2 * 32 * 64;
  const std::vector<float> x = normal(n, 31), dy = normal(n, 32), gamma = normal(32, 33);
  const bw::result<float> want = bw::run<float>(p, x, dy, gamma, {});
  const gn_problem cp = c_problem(p);
  owned_plan plan;
  REQUIRE(gn_plan_create(&cp, &plan.plan) == GN_OK);
  std::vector<float> dx(n, kUnwritten), dgamma(32, kUnwritten), dbeta(32, kUnwritten);
  gn_backward_tensors t;
  gn_backward_tensors_init(&t);
  t.struct_size = offsetof(gn_backward_tensors, workspace);
  t.x = x.data();
  t.dy = dy.data();
  t.gamma = gamma.data();
  t.dx = dx.data();
  t.dgamma = dgamma.data();
  t.dbeta = dbeta.data();
  REQUIRE(gn_plan_run_backward(plan.plan, &t, nullptr) == GN_OK);
  CHECK(first_bit_difference(dx, want.dx) == -1);
  CHECK(first_bit_difference(dgamma, want.dgamma) == -1);
  CHECK(first_bit_difference(dbeta, want.dbeta) == -1);
}
