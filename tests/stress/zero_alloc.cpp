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

struct bufs {
  std::vector<float> x, y, r, sum, gamma, beta, mean, rstd, expected;
};

}  // namespace

TEST_CASE("a run on a prepared plan performs zero heap allocations (tiny, split, many pairs, fused)") {
  tbb::task_arena arena(tbb::info::default_concurrency());
  arena.initialize();
  std::vector<groupnorm::plan> plans;
  std::vector<bufs> data;
  for (const case_t& c : kCases) {
    groupnorm::problem p;
    p.batch = c.batch;
    p.channels = c.channels;
    p.spatial = c.spatial;
    p.num_groups = c.groups;
    p.residual = c.residual;
    plans.emplace_back(p);
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
    bufs& b = data[i];
    if (kCases[i].residual) {
      groupnorm::tensors<float> t{.x = b.x,
                                  .y = b.y,
                                  .gamma = b.gamma,
                                  .beta = b.beta,
                                  .residual = b.r,
                                  .sum = b.sum,
                                  .mean = b.mean,
                                  .rstd = b.rstd};
      if (how == 1)
        arena.execute([&] { pl.run(t); });
      else
        pl.run(t, &arena);
      return;
    }
    switch (how) {
      case 0:
        pl.run(b.x, b.y, b.gamma, b.beta, &arena);
        break;
      case 1:  // the caller's current arena
        arena.execute([&] { pl.run(b.x, b.y, b.gamma, b.beta); });
        break;
      default: {  // the C ABI on its cached arena (warm)
        const case_t& c = kCases[i];
        REQUIRE(gn_group_norm_f32(b.x.data(), b.y.data(), b.gamma.data(), b.beta.data(), c.batch, c.channels,
                                  c.spatial, c.groups, 1e-5f, 0) == GN_OK);
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
  // Warm-up: TBB creates its workers, task pools and per-thread data on first use; the C ABI creates its
  // arena.
  for (int w = 0; w < 5; ++w)
    for (std::size_t i = 0; i < plans.size(); ++i)
      for (int how = 0; how < 3; ++how) run(i, how);
  for (bufs& b : data) b.expected = b.y;

  for (std::size_t i = 0; i < plans.size(); ++i) {
    for (int how = 0; how < 3; ++how) {
      if (kCases[i].residual && how == 2) continue;  // the plain C entry point has no residual
      std::fill(data[i].y.begin(), data[i].y.end(), 0.0f);
      const unsigned long news0 = gn_alloc::news.load(), mallocs0 = gn_alloc::mallocs.load();
      const unsigned long mmaps0 = gn_alloc::mmaps.load();
      for (int r = 0; r < 50; ++r) run(i, how);
      const unsigned long news = gn_alloc::news.load() - news0, mallocs = gn_alloc::mallocs.load() - mallocs0;
      const unsigned long mmaps = gn_alloc::mmaps.load() - mmaps0;
      INFO(kCases[i].name << (how == 0 ? " (explicit arena)" : how == 1 ? " (current arena)" : " (C ABI)"));
      CHECK(news == 0);
      CHECK(mallocs == 0);
      CHECK(mmaps == 0);
      CHECK(std::memcmp(data[i].y.data(), data[i].expected.data(), data[i].y.size() * sizeof(float)) == 0);
    }
  }
  const std::string what = gn_alloc::kMallocCounted
                               ? "operator new, malloc family and mmap counted"
                               : "operator new counted (sanitizer build: malloc belongs to it)";
  MESSAGE(what);
}
