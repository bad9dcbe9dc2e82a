// The converse of selftest_race.cpp: correctly synchronized TBB code must produce no ThreadSanitizer report
// with the bridge preloaded. Exercises every hand-off the bridge models: spawn/steal and join of parallel_for
// (auto, simple and static partitioners), task blocks recycled between threads by the small-object pool,
// task_group run/wait, nested parallelism, and task_arena::execute from more caller threads than the arena
// has slots (the functor then runs on a worker). Each result is written inside tasks and read serially after
// the join. Also checks the bridge is really active (ITT initialized, acquires/releases counted).
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <thread>
#include <vector>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

namespace {

int failures = 0;
void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    ++failures;
  }
}

template <typename Partitioner>
void fill_and_sum(std::vector<long>& v, long salt) {
  Partitioner part;
  tbb::parallel_for(
      tbb::blocked_range<std::size_t>(0, v.size(), 7),
      [&](const tbb::blocked_range<std::size_t>& r) {
        for (std::size_t i = r.begin(); i != r.end(); ++i) v[i] = static_cast<long>(i) * salt;
      },
      part);
  long expect = 0, sum = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    expect += static_cast<long>(i) * salt;
    sum += v[i];  // serial read after the join
  }
  check(sum == expect, "parallel_for result");
}

}  // namespace

int main() {
  std::vector<long> v(20000);
  for (long rep = 1; rep <= 20; ++rep) {
    fill_and_sum<tbb::auto_partitioner>(v, rep);
    fill_and_sum<tbb::simple_partitioner>(v, rep + 1);
    fill_and_sum<tbb::static_partitioner>(v, rep + 2);
  }

  // task_group: results written by the tasks, read after wait().
  {
    std::vector<long> parts(16, 0);
    tbb::task_group tg;
    for (std::size_t i = 0; i < parts.size(); ++i)
      tg.run([&parts, i] { parts[i] = static_cast<long>(i) + 1; });
    tg.wait();
    check(std::accumulate(parts.begin(), parts.end(), 0L) == 136, "task_group result");
  }

  // Nested parallel_for.
  {
    std::vector<std::vector<long>> m(8, std::vector<long>(500));
    tbb::parallel_for(std::size_t(0), m.size(), [&](std::size_t i) {
      tbb::parallel_for(std::size_t(0), m[i].size(),
                        [&](std::size_t j) { m[i][j] = static_cast<long>(i + j); });
    });
    long sum = 0;
    for (const auto& row : m) sum += std::accumulate(row.begin(), row.end(), 0L);
    check(sum == 8 * (499 * 500 / 2) + 500 * (7 * 8 / 2), "nested parallel_for result");
  }

  // More callers than arena slots: task_arena::execute then runs some functors on a worker thread.
  {
    tbb::task_arena arena(2);
    std::vector<std::vector<long>> out(6, std::vector<long>(3000));
    std::vector<std::thread> callers;
    for (std::size_t c = 0; c < out.size(); ++c)
      callers.emplace_back([&, c] {
        for (int rep = 0; rep < 10; ++rep) {
          std::vector<long>& mine = out[c];
          arena.execute([&] {
            tbb::parallel_for(std::size_t(0), mine.size(),
                              [&](std::size_t i) { mine[i] = static_cast<long>(c + i); });
          });
          long sum = std::accumulate(mine.begin(), mine.end(), 0L);
          check(sum == static_cast<long>(c) * 3000 + 2999 * 3000 / 2, "arena caller result");
        }
      });
    for (auto& t : callers) t.join();
  }

  using stats_fn = void(int*, unsigned long*, unsigned long*);
  auto* stats = reinterpret_cast<stats_fn*>(dlsym(RTLD_DEFAULT, "itt_tsan_bridge_stats"));
  check(stats != nullptr, "itt_tsan_bridge is loaded (LD_PRELOAD)");
  if (stats) {
    int inits = 0;
    unsigned long acquires = 0, releases = 0;
    stats(&inits, &acquires, &releases);
    std::printf("itt_tsan_bridge: %d ITT init(s), %lu acquires, %lu releases\n", inits, acquires, releases);
    check(inits >= 1, "libtbb's ITT notify loaded the bridge");
    check(acquires > 0 && releases > 0, "the bridge saw TBB hand-offs");
  }
  std::printf("%s\n", failures ? "FAILED" : "clean");
  return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
