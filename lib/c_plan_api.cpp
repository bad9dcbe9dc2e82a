// The C plan and arena API: gn_problem / gn_tensors / gn_backward_tensors, gn_plan_* and gn_arena_*. A run
// reads the caller's struct (a copy when its version differs) and goes through the same entry point as every
// other surface.
#include <memory>
#include <new>
#include <string>

#include <oneapi/tbb/task_arena.h>

#include "c_api_support.hpp"
#include "groupnorm/groupnorm.h"
#include "plan/backward.hpp"
#include "plan/plan_state.hpp"
#include "schedule/schedule.hpp"

struct gn_plan {
  groupnorm::detail::plan_state state;
};

struct gn_arena {
  explicit gn_arena(int threads) : arena(threads) {}
  tbb::task_arena arena;
};

namespace groupnorm::detail {
namespace {

// Sizes an older header's struct may have (offsets of the fields after struct_size) and this header's.
constexpr std::size_t kProblemSizes[] = {offsetof(gn_problem, batch),    offsetof(gn_problem, channels),
                                         offsetof(gn_problem, spatial),  offsetof(gn_problem, num_groups),
                                         offsetof(gn_problem, epsilon),  offsetof(gn_problem, layout),
                                         offsetof(gn_problem, dtype),    offsetof(gn_problem, activation),
                                         offsetof(gn_problem, residual), sizeof(gn_problem)};
constexpr struct_names kProblemNames{"problem", "gn_problem", "gn_problem_init"};

constexpr std::size_t kTensorsSizes[] = {
    offsetof(gn_tensors, x),    offsetof(gn_tensors, y),        offsetof(gn_tensors, gamma),
    offsetof(gn_tensors, beta), offsetof(gn_tensors, residual), offsetof(gn_tensors, sum),
    offsetof(gn_tensors, mean), offsetof(gn_tensors, rstd),     sizeof(gn_tensors)};
constexpr struct_names kTensorsNames{"tensors", "gn_tensors", "gn_tensors_init"};

constexpr std::size_t kBackwardTensorsSizes[] = {
    offsetof(gn_backward_tensors, x),     offsetof(gn_backward_tensors, dy),
    offsetof(gn_backward_tensors, gamma), offsetof(gn_backward_tensors, beta),
    offsetof(gn_backward_tensors, mean),  offsetof(gn_backward_tensors, rstd),
    offsetof(gn_backward_tensors, dx),    offsetof(gn_backward_tensors, dgamma),
    offsetof(gn_backward_tensors, dbeta), offsetof(gn_backward_tensors, workspace),
    sizeof(gn_backward_tensors)};
constexpr struct_names kBackwardTensorsNames{"tensors", "gn_backward_tensors", "gn_backward_tensors_init"};

[[noreturn, gnu::noinline]] void null_argument(const char* name) {
  throw invalid_argument(std::string("groupnorm: ") + name + " is null");
}
// Inline: gn_plan_run's two checks stay two compares (the message is built out of line).
inline void require(const void* p, const char* name) {
  if (p == nullptr) [[unlikely]]
    null_argument(name);
}

problem problem_from(const gn_problem& c) {
  problem p;
  p.batch = c.batch;
  p.channels = c.channels;
  p.spatial = c.spatial;
  p.num_groups = c.num_groups;
  p.epsilon = c.epsilon;
  p.memory_layout = static_cast<layout>(raw_enum(c.layout));
  p.data_type = static_cast<dtype>(raw_enum(c.dtype));
  p.fused_activation = static_cast<activation>(raw_enum(c.activation));
  p.residual = c.residual != 0;
  return p;
}

}  // namespace
}  // namespace groupnorm::detail

extern "C" {

void gn_problem_init(gn_problem* p) {
  if (p == nullptr) return;
  *p = gn_problem{};
  p->struct_size = sizeof(gn_problem);
  p->batch = 1;
  p->spatial = 1;
  p->epsilon = 1e-5f;
}

void gn_tensors_init(gn_tensors* t) {
  if (t == nullptr) return;
  *t = gn_tensors{};
  t->struct_size = sizeof(gn_tensors);
}

gn_status gn_plan_create(const gn_problem* p, gn_plan** out) {
  using namespace groupnorm::detail;
  return guarded([&] {
    require(p, "problem");
    require(out, "out");
    gn_problem c;
    gn_problem_init(&c);
    read_versioned(*p, c, kProblemSizes, kProblemNames);
    auto plan = std::make_unique<gn_plan>(gn_plan{make_plan_state(problem_from(c))});
    *out = plan.release();
  });
}

gn_status gn_plan_run(const gn_plan* plan, const gn_tensors* t, gn_arena* arena) {
  using namespace groupnorm::detail;
  return guarded([&] {
    require(plan, "plan");
    require(t, "tensors");
    // This header's struct is read in place; another version is first copied over the defaults.
    gn_tensors copy;
    const gn_tensors* c = t;
    if (t->struct_size != sizeof(gn_tensors)) [[unlikely]] {
      gn_tensors_init(&copy);
      read_versioned(*t, copy, kTensorsSizes, kTensorsNames);
      c = &copy;
    }
    run_pointers(plan->state,
                 run_buffers{c->x, c->residual, c->y, c->sum, c->gamma, c->beta, c->mean, c->rstd},
                 arena ? &arena->arena : nullptr);
  });
}

void gn_backward_tensors_init(gn_backward_tensors* t) {
  if (t == nullptr) return;
  *t = gn_backward_tensors{};
  t->struct_size = sizeof(gn_backward_tensors);
}

size_t gn_plan_backward_workspace_size(const gn_plan* plan) {
  return plan ? groupnorm::detail::backward_workspace_doubles(plan->state) : 0;
}

gn_status gn_plan_run_backward(const gn_plan* plan, const gn_backward_tensors* t, gn_arena* arena) {
  using namespace groupnorm::detail;
  return guarded([&] {
    require(plan, "plan");
    require(t, "tensors");
    gn_backward_tensors c;
    gn_backward_tensors_init(&c);
    read_versioned(*t, c, kBackwardTensorsSizes, kBackwardTensorsNames);
    run_backward_pointers(
        plan->state,
        backward_buffers{c.x, c.dy, c.gamma, c.beta, c.mean, c.rstd, c.dx, c.dgamma, c.dbeta, c.workspace},
        arena ? &arena->arena : nullptr);
  });
}

void gn_plan_destroy(gn_plan* plan) {
  delete plan;
}

gn_status gn_arena_create(int num_threads, gn_arena** out) {
  using namespace groupnorm::detail;
  return guarded([&] {
    require(out, "out");
    if (num_threads < 0)
      throw groupnorm::invalid_argument("groupnorm: num_threads = " + std::to_string(num_threads) +
                                        ", expected 0 (all hardware threads) or a positive count");
    auto arena = std::make_unique<gn_arena>(capped_threads(num_threads));
    arena->arena.initialize();
    *out = arena.release();
  });
}

void gn_arena_destroy(gn_arena* arena) {
  delete arena;
}

}  // extern "C"
