// The C plan and arena API (gn_problem, gn_tensors, gn_plan_*, gn_arena_*): the bits of plan::run for every
// storage type, layout and option, struct_size versioning, and every error leaving the outputs untouched.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "groupnorm/groupnorm.h"
#include "test_util.hpp"

using namespace gn_test;

namespace {

std::string last_error() {
  return gn_last_error();
}

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

gn_problem c_problem(const shape& s) {
  gn_problem p;
  gn_problem_init(&p);
  p.batch = s.batch;
  p.channels = s.channels;
  p.spatial = s.spatial;
  p.num_groups = s.groups;
  return p;
}

// A plan that destroys itself.
struct owned_plan {
  gn_plan* plan = nullptr;
  ~owned_plan() { gn_plan_destroy(plan); }
};

// Runs the same problem through plan::run and gn_plan_run (and gn_group_norm_ex) and compares the bits.
template <class T>
void check_same_bits(const shape& s, groupnorm::layout l, groupnorm::activation a, bool residual) {
  CAPTURE(s.name());
  CAPTURE(static_cast<int>(l));
  CAPTURE(static_cast<int>(a));
  CAPTURE(residual);
  groupnorm::problem p = make_problem(s);
  p.memory_layout = l;
  p.fused_activation = a;
  p.residual = residual;
  p.data_type = std::is_same_v<T, float>            ? groupnorm::dtype::f32
                : std::is_same_v<T, groupnorm::f16> ? groupnorm::dtype::f16
                                                    : groupnorm::dtype::bf16;
  const std::vector<T> x = encode<T>(normal(s.elements(), 11, 0.5, 2.0));
  const std::vector<T> r = encode<T>(normal(residual ? s.elements() : 0, 12));
  const std::vector<float> gamma = uniform(s.channels, 2, 0.5, 1.5), beta = uniform(s.channels, 3, -1, 1);
  std::vector<T> y(x.size()), sum(r.size()), y_c(x.size()), sum_c(r.size());
  std::vector<float> mean(s.pairs()), rstd(s.pairs()), mean_c(s.pairs()), rstd_c(s.pairs());
  const groupnorm::plan pl(p);
  pl.run(groupnorm::tensors<T>{
      .x = x, .y = y, .gamma = gamma, .beta = beta, .residual = r, .sum = sum, .mean = mean, .rstd = rstd});

  gn_problem cp = c_problem(s);
  cp.layout = static_cast<gn_layout>(l);
  cp.dtype = static_cast<gn_dtype>(p.data_type);
  cp.activation = static_cast<gn_activation>(a);
  cp.residual = residual ? 1 : 0;
  owned_plan plan;
  REQUIRE(gn_plan_create(&cp, &plan.plan) == GN_OK);
  gn_tensors t;
  gn_tensors_init(&t);
  t.x = x.data();
  t.y = y_c.data();
  t.gamma = gamma.data();
  t.beta = beta.data();
  t.residual = residual ? r.data() : nullptr;
  t.sum = residual ? sum_c.data() : nullptr;
  t.mean = mean_c.data();
  t.rstd = rstd_c.data();
  gn_arena* arena = nullptr;
  REQUIRE(gn_arena_create(2, &arena) == GN_OK);
  for (gn_arena* where : {static_cast<gn_arena*>(nullptr), arena}) {
    REQUIRE(gn_plan_run(plan.plan, &t, where) == GN_OK);
    CHECK(last_error().empty());
    CHECK(same_bits(y, y_c));
    CHECK(same_bits(sum, sum_c));
    CHECK(same_bits(mean, mean_c));
    CHECK(same_bits(rstd, rstd_c));
  }
  gn_arena_destroy(arena);
}

}  // namespace

TEST_CASE("gn_plan_run gives the bits of plan::run for every dtype, layout, activation and residual") {
  for (const shape& s : {shape{2, 6, 7, 3}, shape{1, 32, 64, 8}, shape{2, 64, 33 * 31, 8}}) {
    for (auto l : {groupnorm::layout::nchw, groupnorm::layout::nhwc})
      for (auto a : {groupnorm::activation::none, groupnorm::activation::silu})
        for (bool residual : {false, true}) {
          check_same_bits<float>(s, l, a, residual);
          check_same_bits<groupnorm::f16>(s, l, a, residual);
          check_same_bits<groupnorm::bf16>(s, l, a, residual);
        }
  }
}

TEST_CASE("gn_plan_run matches the float64 reference to 1e-5 and runs in place") {
  const shape s{2, 12, 50, 4};
  const std::vector<float> x = normal(s.elements(), 5, 1.0, 3.0);
  const std::vector<float> gamma = uniform(s.channels, 6, 0.5, 1.5), beta = uniform(s.channels, 7, -1, 1);
  const std::vector<double> ref =
      groupnorm::reference::group_norm(x.data(), s.batch, s.channels, s.spatial, s.groups, 1e-5, gamma, beta);
  const gn_problem cp = c_problem(s);
  owned_plan plan;
  REQUIRE(gn_plan_create(&cp, &plan.plan) == GN_OK);
  std::vector<float> xy = x;
  gn_tensors t;
  gn_tensors_init(&t);
  t.x = xy.data();
  t.y = xy.data();
  t.gamma = gamma.data();
  t.beta = beta.data();
  REQUIRE(gn_plan_run(plan.plan, &t, nullptr) == GN_OK);
  // The suite's f32 bound (test_reference.cpp): |y - ref| <= 1e-5 (1 + |ref|).
  const compare_result c = compare(xy, ref, 1e-5, 1e-5);
  INFO(c.describe());
  CHECK(c.failures == 0);
}

TEST_CASE("gn_problem_init and gn_tensors_init set struct_size and the defaults; NULL is a no-op") {
  gn_problem p;
  std::memset(&p, 0xAB, sizeof p);
  gn_problem_init(&p);
  CHECK(p.struct_size == sizeof(gn_problem));
  CHECK(p.batch == 1);
  CHECK(p.channels == 0);
  CHECK(p.spatial == 1);
  CHECK(p.num_groups == 0);
  CHECK(p.epsilon == 1e-5f);
  CHECK(p.layout == GN_LAYOUT_NCHW);
  CHECK(p.dtype == GN_DTYPE_F32);
  CHECK(p.activation == GN_ACTIVATION_NONE);
  CHECK(p.residual == 0);
  gn_tensors t;
  std::memset(&t, 0xAB, sizeof t);
  gn_tensors_init(&t);
  CHECK(t.struct_size == sizeof(gn_tensors));
  CHECK((t.x == nullptr && t.y == nullptr && t.gamma == nullptr && t.beta == nullptr &&
         t.residual == nullptr && t.sum == nullptr && t.mean == nullptr && t.rstd == nullptr));
  gn_problem_init(nullptr);
  gn_tensors_init(nullptr);
  gn_plan_destroy(nullptr);
  gn_arena_destroy(nullptr);
}

TEST_CASE("C plan errors return GN_INVALID_ARGUMENT naming the argument and write nothing") {
  const shape s{2, 8, 16, 4};
  std::vector<float> x = normal(s.elements(), 1), y(s.elements(), 7.0f), r(s.elements(), 1.0f);
  std::vector<float> mean(s.pairs(), 7.0f);
  gn_plan* const untouched = reinterpret_cast<gn_plan*>(std::uintptr_t{0x1234});

  SUBCASE("gn_plan_create: bad problem, null arguments, struct_size") {
    gn_problem p = c_problem(s);
    gn_plan* out = untouched;
    p.num_groups = 3;
    CHECK(gn_plan_create(&p, &out) == GN_INVALID_ARGUMENT);
    CHECK(contains(last_error(), "num_groups = 3 does not divide channels = 8"));
    p = c_problem(s);
    p.dtype = static_cast<gn_dtype>(9);
    CHECK(gn_plan_create(&p, &out) == GN_INVALID_ARGUMENT);
    CHECK(contains(last_error(), "dtype = 9"));
    p = c_problem(s);
    CHECK(gn_plan_create(nullptr, &out) == GN_INVALID_ARGUMENT);
    CHECK(contains(last_error(), "problem is null"));
    CHECK(gn_plan_create(&p, nullptr) == GN_INVALID_ARGUMENT);
    CHECK(contains(last_error(), "out is null"));
    p.struct_size = offsetof(gn_problem, channels) + 1;  // inside a field
    CHECK(gn_plan_create(&p, &out) == GN_INVALID_ARGUMENT);
    CHECK(contains(last_error(),
                   "problem->struct_size = " + std::to_string(offsetof(gn_problem, channels) + 1)));
    CHECK(out == untouched);
  }
  SUBCASE("gn_plan_run: residual missing or unexpected, null plan or tensors, bad struct_size") {
    gn_problem p = c_problem(s);
    p.residual = 1;
    owned_plan plan;
    REQUIRE(gn_plan_create(&p, &plan.plan) == GN_OK);
    gn_tensors t;
    gn_tensors_init(&t);
    t.x = x.data();
    t.y = y.data();
    t.mean = mean.data();
    CHECK(gn_plan_run(plan.plan, &t, nullptr) == GN_INVALID_ARGUMENT);
    CHECK(contains(last_error(), "residual"));
    CHECK(gn_plan_run(nullptr, &t, nullptr) == GN_INVALID_ARGUMENT);
    CHECK(contains(last_error(), "plan is null"));
    CHECK(gn_plan_run(plan.plan, nullptr, nullptr) == GN_INVALID_ARGUMENT);
    CHECK(contains(last_error(), "tensors is null"));
    t.residual = r.data();
    t.y = nullptr;
    CHECK(gn_plan_run(plan.plan, &t, nullptr) == GN_INVALID_ARGUMENT);
    CHECK(contains(last_error(), "y is null"));
    t.y = x.data() + 1;  // overlaps x without being x
    CHECK(gn_plan_run(plan.plan, &t, nullptr) == GN_INVALID_ARGUMENT);
    CHECK(contains(last_error(), "overlaps"));
    t.y = y.data();
    struct newer {
      gn_tensors known;
      void* unknown;
    } n{t, &mean};  // a newer header's struct with a non-zero unknown field
    n.known.struct_size = sizeof n;
    CHECK(gn_plan_run(plan.plan, &n.known, nullptr) == GN_INVALID_ARGUMENT);
    CHECK(contains(last_error(), "tensors->struct_size = " + std::to_string(sizeof n)));
    n.unknown = nullptr;  // zero: accepted
    CHECK(gn_plan_run(plan.plan, &n.known, nullptr) == GN_OK);
    std::fill(y.begin(), y.end(), 7.0f);
    std::fill(mean.begin(), mean.end(), 7.0f);
    // The plan without residual refuses one.
    owned_plan plain;
    const gn_problem q = c_problem(s);
    REQUIRE(gn_plan_create(&q, &plain.plan) == GN_OK);
    CHECK(gn_plan_run(plain.plan, &t, nullptr) == GN_INVALID_ARGUMENT);
    CHECK(contains(last_error(), "residual = false"));
  }
  SUBCASE("gn_arena_create: negative count") {
    gn_arena* arena = reinterpret_cast<gn_arena*>(std::uintptr_t{0x1234});
    CHECK(gn_arena_create(-1, &arena) == GN_INVALID_ARGUMENT);
    CHECK(contains(last_error(), "num_threads = -1"));
    CHECK(arena == reinterpret_cast<gn_arena*>(std::uintptr_t{0x1234}));
    CHECK(gn_arena_create(1, nullptr) == GN_INVALID_ARGUMENT);
  }
  for (float v : y) REQUIRE(v == 7.0f);
  for (float v : mean) REQUIRE(v == 7.0f);
}

TEST_CASE("an older header's shorter gn_problem and gn_tensors keep the defaults of the fields they lack") {
  const shape s{1, 4, 9, 2};
  const std::vector<float> x = normal(s.elements(), 3);
  std::vector<float> y(s.elements()), mean(s.pairs(), 7.0f);
  const std::vector<float> want = run(make_problem(s), x);
  gn_problem p = c_problem(s);
  p.layout = GN_LAYOUT_NHWC;  // past the struct the caller declares: must be ignored
  p.residual = 1;
  p.struct_size = offsetof(gn_problem, layout);
  owned_plan plan;
  REQUIRE(gn_plan_create(&p, &plan.plan) == GN_OK);
  gn_tensors t;
  gn_tensors_init(&t);
  t.x = x.data();
  t.y = y.data();
  t.mean = mean.data();  // past struct_size: ignored, not written
  t.struct_size = offsetof(gn_tensors, residual);
  REQUIRE(gn_plan_run(plan.plan, &t, nullptr) == GN_OK);
  CHECK(same_bits(y, want));
  for (float v : mean) CHECK(v == 7.0f);
}
