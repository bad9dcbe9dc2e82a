// Deliberate data race, to prove tests/tsan/itt_tsan_bridge.cpp does not hide real races: two TBB tasks of
// one parallel_for, running on two threads at the same time, both write `g_shared` with no synchronization.
// Registered with PASS_REGULAR_EXPRESSION: the test passes only if ThreadSanitizer reports the race on
// g_shared (with the bridge preloaded, like every other test of the tsan preset).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>

namespace {

long g_shared = 0;              // the racy variable
std::atomic<int> g_arrived{0};  // a rendezvous, so both writes happen while both tasks are running

// Both tasks wait until the other one has started (or 10 s have passed: then the tasks ran one after the
// other on one thread, and no race can be observed; the test then fails for lack of a report).
void rendezvous() {
  g_arrived.fetch_add(1);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (g_arrived.load() < 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
}

}  // namespace

int main() {
  tbb::task_arena arena(2);
  arena.execute([] {
    tbb::parallel_for(
        tbb::blocked_range<int>(0, 2, 1),
        [](const tbb::blocked_range<int>& r) {
          rendezvous();
          g_shared += r.begin() + 1;  // unsynchronized read-modify-write from two threads
        },
        tbb::simple_partitioner());
  });
  std::printf("g_shared = %ld, tasks met: %s\n", g_shared, g_arrived.load() == 2 ? "yes" : "no");
  return 0;
}
