// Zero heap allocation per run on a prepared plan. What is counted (alloc_hooks.cpp): every call of the
// global operator new (all forms) and, outside sanitizer builds, every call of glibc's malloc, calloc,
// realloc, memalign, aligned_alloc, posix_memalign and valloc, from all threads and all libraries of the
// process (libgroupnorm, libtbb, libstdc++). Not counted: oneTBB's task objects, which come from its
// per-thread small-object pools, backed by libtbbmalloc's scalable_malloc when installed (Debian: yes) —
// resolved by dlsym inside libtbb, so not interposable — else by malloc (counted). What is counted of
// libtbbmalloc is its growth: calls of mmap, which must also stay at zero. Allocations served from TBB's
// recycled pools are not seen.
#include <doctest/doctest.h>

#include <cstdlib>
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

struct case_t {
  const char* name;
  std::size_t batch, channels, spatial, groups;
  bool residual;
};

// tiny (stays on the calling thread), split (B*G = 1: one slice spread over the arena), many pairs, big
// slices (split even with several pairs), and the fused residual + saved statistics form.
const case_t kCases[] = {
    {"tiny_b1_c32_8x8", 1, 32, 64, 8, false},
    {"split_g1_b1_c64_128x128", 1, 64, 128 * 128, 1, false},
    {"pairs_b4_c64_56x56_g64", 4, 64, 56 * 56, 64, false},
    {"big_slices_b2_c2_g1", 2, 2, 150000, 1, false},
    {"residual_stats_b2_c32_32x32_g8", 2, 32, 1024, 8, true},
};

// Counted runs per (case, entry point): enough for any per-run allocation to show; fewer under emulation.
constexpr int kCountedRuns = gn_stress::kEmulated ? 5 : 50;

struct bufs {
  std::vector<float> x, y, r, sum, gamma, beta, mean, rstd, expected;
};

}  // namespace

// The entry points a test case goes through: the C++ plan with an explicit arena and in the current arena,
// the one-shot C functions on their cached arena, and the C plan on the calling thread's arena and on a
// gn_arena.
enum entry : int { cpp_arena, cpp_current, c_f32, c_ex, c_plan_current, c_plan_arena, kEntries };
const char* const kEntryNames[] = {"C++ plan, explicit arena", "C++ plan, current arena",
                                   "gn_group_norm_f32",        "gn_group_norm_ex",
                                   "gn_plan_run, NULL arena",  "gn_plan_run, gn_arena"};

TEST_CASE("a run through every entry point performs zero heap allocations (tiny, split, many pairs, fused)") {
  tbb::task_arena arena(tbb::info::default_concurrency());
  arena.initialize();
  gn_arena* c_arena = nullptr;
  REQUIRE(gn_arena_create(0, &c_arena) == GN_OK);
  std::vector<groupnorm::plan> plans;
  std::vector<gn_plan*> c_plans;
  std::vector<bufs> data;
  for (const case_t& c : kCases) {
    groupnorm::problem p;
    p.batch = c.batch;
    p.channels = c.channels;
    p.spatial = c.spatial;
    p.num_groups = c.groups;
    p.residual = c.residual;
    plans.emplace_back(p);
    gn_problem cp;
    gn_problem_init(&cp);
    cp.batch = c.batch;
    cp.channels = c.channels;
    cp.spatial = c.spatial;
    cp.num_groups = c.groups;
    cp.residual = c.residual ? 1 : 0;
    c_plans.push_back(nullptr);
    REQUIRE(gn_plan_create(&cp, &c_plans.back()) == GN_OK);
    const std::size_t n = c.batch * c.channels * c.spatial, pairs = c.batch * c.groups;
    bufs b;
    b.x.resize(n);
    for (std::size_t i = 0; i < n; ++i) b.x[i] = static_cast<float>((i * 131) % 1009) * 0.01f;
    b.y.resize(n);
    b.gamma.assign(c.channels, 1.25f);
    b.beta.assign(c.channels, -0.5f);
    if (c.residual) {
      b.r.assign(n, 0.5f);
      b.sum.resize(n);
      b.mean.resize(pairs);
      b.rstd.resize(pairs);
    }
    data.push_back(std::move(b));
  }
  auto run = [&](std::size_t i, int how) {
    const groupnorm::plan& pl = plans[i];
    const case_t& c = kCases[i];
    bufs& b = data[i];
    const bool r = c.residual;
    groupnorm::tensors<float> t{.x = b.x, .y = b.y, .gamma = b.gamma, .beta = b.beta};
    if (r) t.residual = b.r, t.sum = b.sum, t.mean = b.mean, t.rstd = b.rstd;
    switch (how) {
      case cpp_arena:
        pl.run(t, &arena);
        break;
      case cpp_current:
        arena.execute([&] { pl.run(t); });
        break;
      case c_f32:  // no residual form
        REQUIRE(gn_group_norm_f32(b.x.data(), b.y.data(), b.gamma.data(), b.beta.data(), c.batch, c.channels,
                                  c.spatial, c.groups, 1e-5f, 0) == GN_OK);
        break;
      case c_ex: {
        gn_options o;
        gn_options_init(&o);
        if (r) o.residual = b.r.data(), o.sum = b.sum.data(), o.mean = b.mean.data(), o.rstd = b.rstd.data();
        REQUIRE(gn_group_norm_ex(b.x.data(), b.y.data(), b.gamma.data(), b.beta.data(), c.batch, c.channels,
                                 c.spatial, c.groups, 1e-5f, &o) == GN_OK);
        break;
      }
      default: {
        gn_tensors ct;
        gn_tensors_init(&ct);
        ct.x = b.x.data();
        ct.y = b.y.data();
        ct.gamma = b.gamma.data();
        ct.beta = b.beta.data();
        if (r)
          ct.residual = b.r.data(), ct.sum = b.sum.data(), ct.mean = b.mean.data(), ct.rstd = b.rstd.data();
        if (how == c_plan_current)
          arena.execute([&] { REQUIRE(gn_plan_run(c_plans[i], &ct, nullptr) == GN_OK); });
        else
          REQUIRE(gn_plan_run(c_plans[i], &ct, c_arena) == GN_OK);
      }
    }
  };
  // The hooks see allocations at all (direct calls: a new-expression or malloc/free pair may be elided).
  {
    const unsigned long news0 = gn_alloc::news.load(), mallocs0 = gn_alloc::mallocs.load();
    void* volatile p = ::operator new(24);
    ::operator delete(p);
    void* volatile m = std::malloc(24);
    std::free(m);
    CHECK(gn_alloc::news.load() > news0);
    if (gn_alloc::kMallocCounted) CHECK(gn_alloc::mallocs.load() > mallocs0 + 1);
  }
  // Warm-up: TBB creates its workers, task pools and per-thread data on first use; the one-shot C ABI
  // creates its arena.
  for (int w = 0; w < 5; ++w)
    for (std::size_t i = 0; i < plans.size(); ++i)
      for (int how = 0; how < kEntries; ++how)
        if (!(kCases[i].residual && how == c_f32)) run(i, how);
  for (bufs& b : data) b.expected = b.y;

  for (std::size_t i = 0; i < plans.size(); ++i) {
    for (int how = 0; how < kEntries; ++how) {
      if (kCases[i].residual && how == c_f32) continue;  // the plain C entry point has no residual
      std::fill(data[i].y.begin(), data[i].y.end(), 0.0f);
      const gn_alloc::counts start = gn_alloc::counts_now();
      for (int r = 0; r < kCountedRuns; ++r) run(i, how);
      const gn_alloc::counts n = gn_alloc::counts_since(start);
      INFO(kCases[i].name << " (" << kEntryNames[how] << ")");
      CHECK(n.news == 0);
      CHECK(n.mallocs == 0);
      CHECK(n.mmaps == 0);
      CHECK(std::memcmp(data[i].y.data(), data[i].expected.data(), data[i].y.size() * sizeof(float)) == 0);
    }
  }
  for (gn_plan* p : c_plans) gn_plan_destroy(p);
  gn_arena_destroy(c_arena);
  const std::string what = gn_alloc::kMallocCounted
                               ? "operator new, malloc family and mmap counted"
                               : "operator new counted (sanitizer build: malloc belongs to it)";
  MESSAGE(what);
}
