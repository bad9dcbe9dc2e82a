// Concurrency stress: many caller threads share one arena and one set of immutable plans; every output must
// be bitwise equal to the serial (1-thread) result. Nested parallelism: runs issued from inside TBB tasks of
// the caller's arena must finish (a watchdog turns a deadlock into a failure) without creating threads.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include <oneapi/tbb/info.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_scheduler_observer.h>

#include "common.hpp"
#include "groupnorm/groupnorm.h"
#include "groupnorm/groupnorm.hpp"

namespace {

using gn_stress::kSlow;

struct shape {
  const char* name;
  std::size_t batch, channels, spatial, groups;
};

// Mixed on purpose: split slices (B*G = 1 and >= 65536 elements, or slices past the split threshold), many
// (sample, group) pairs, and tiny problems that stay on the calling thread (< 32768 elements).
const shape kShapes[] = {
    {"split_g1_b1_65659", 1, 1, 65536 + 123, 1},
    {"split_g1_b1_c4", 1, 4, 40000, 1},
    {"split_big_slices_b2", 2, 2, 150000, 1},
    {"pairs_b4_c64_g32", 4, 64, 256, 32},
    {"pairs_b2_c32_g32", 2, 32, 2048, 32},
    {"tiny_b1_c32_8x8", 1, 32, 64, 8},
    {"tiny_b2_c8_g4", 2, 8, 1000, 4},
    {"tiny_b3_c6_g3_odd", 3, 6, 7, 3},
};
constexpr std::size_t kNumShapes = sizeof(kShapes) / sizeof(kShapes[0]);

struct prepared {
  shape sh;
  groupnorm::plan plan;
  std::vector<float> x, gamma, beta, serial;  // serial: output of a 1-thread arena
  std::size_t size() const { return x.size(); }
};

groupnorm::problem problem_of(const shape& s) {
  groupnorm::problem p;
  p.batch = s.batch;
  p.channels = s.channels;
  p.spatial = s.spatial;
  p.num_groups = s.groups;
  p.epsilon = 1e-5f;
  return p;
}

std::vector<prepared> prepare_all() {
  std::vector<prepared> out;
  std::mt19937 rng(1234);
  tbb::task_arena serial(1);
  for (const shape& s : kShapes) {
    prepared p{s, groupnorm::plan(problem_of(s)), {}, {}, {}, {}};
    const std::size_t n = s.batch * s.channels * s.spatial;
    std::normal_distribution<float> noise(3.0f, 2.0f);
    p.x.resize(n);
    for (float& v : p.x) v = noise(rng);
    p.gamma.resize(s.channels);
    p.beta.resize(s.channels);
    for (float& v : p.gamma) v = noise(rng);
    for (float& v : p.beta) v = noise(rng);
    p.serial.assign(n, 0.0f);
    p.plan.run(p.x, p.serial, p.gamma, p.beta, &serial);
    out.push_back(std::move(p));
  }
  return out;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("8 callers x one shared arena x mixed shapes: every output bitwise equal to the serial result") {
  const std::vector<prepared> plans = prepare_all();
  const int arena_threads = tbb::info::default_concurrency();  // more would only warn: TBB caps workers
  tbb::task_arena shared(arena_threads);
  constexpr int kCallers = 8;
  const double seconds = gn_stress::stress_seconds();
  const long max_runs_per_caller = kSlow ? 400 : 4000;
  gn_stress::watchdog dog(seconds * 4 + 120, "concurrency stress");

  std::atomic<long> runs{0}, mismatches{0}, errors{0};
  std::mutex first_failure_mutex;
  std::string first_failure;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);

  auto caller = [&](int id) {
    // Each caller owns its outputs; inputs, plans and the arena are shared.
    std::vector<std::vector<float>> y(kNumShapes), inplace(kNumShapes);
    for (std::size_t i = 0; i < kNumShapes; ++i) y[i].resize(plans[i].size());
    auto fail = [&](const std::string& what) {
      std::lock_guard<std::mutex> lock(first_failure_mutex);
      if (first_failure.empty()) first_failure = what;
    };
    for (long r = 0; r < max_runs_per_caller && std::chrono::steady_clock::now() < deadline; ++r) {
      const std::size_t i = static_cast<std::size_t>(id + r * 3) % kNumShapes;
      const prepared& p = plans[i];
      std::fill(y[i].begin(), y[i].end(), -7.0f);
      try {
        switch ((id + r) % 4) {
          case 0:  // explicit arena
            p.plan.run(p.x, y[i], p.gamma, p.beta, &shared);
            break;
          case 1:  // the caller's current arena, entered by the caller
            shared.execute([&] { p.plan.run(p.x, y[i], p.gamma, p.beta); });
            break;
          case 2:  // in place, explicit arena
            inplace[i] = p.x;
            p.plan.run_inplace(inplace[i], p.gamma, p.beta, &shared);
            y[i] = inplace[i];
            break;
          default: {  // the C ABI (its own cached arenas, guarded by a mutex) with varying thread counts
            const gn_status st =
                gn_group_norm_f32(p.x.data(), y[i].data(), p.gamma.data(), p.beta.data(), p.sh.batch,
                                  p.sh.channels, p.sh.spatial, p.sh.groups, 1e-5f, static_cast<int>(r % 4));
            if (st != GN_OK) {
              ++errors;
              fail(std::string(p.sh.name) + ": C ABI status " + std::to_string(st) + ": " + gn_last_error());
            }
            break;
          }
        }
      } catch (const std::exception& e) {
        ++errors;
        fail(std::string(p.sh.name) + ": exception " + e.what());
      }
      if (!same_bits(y[i], p.serial)) {
        ++mismatches;
        fail(std::string(p.sh.name) + ": output differs from the serial result (caller " +
             std::to_string(id) + ", run " + std::to_string(r) + ")");
      }
      ++runs;
    }
  };
  std::vector<std::thread> callers;
  for (int id = 0; id < kCallers; ++id) callers.emplace_back(caller, id);
  for (std::thread& t : callers) t.join();

  MESSAGE("runs: " << runs.load() << " in <= " << seconds << " s, arena of " << arena_threads << " threads, "
                   << kCallers << " callers");
  INFO(first_failure);
  CHECK(errors.load() == 0);
  CHECK(mismatches.load() == 0);
  // "Thousands of runs" in Release; a floor that still proves every caller ran every shape under sanitizers
  // and emulation.
  CHECK(runs.load() >= (kSlow ? static_cast<long>(kCallers * kNumShapes) : 2000));
}

namespace {

// Records every thread that enters an arena.
class thread_recorder : public tbb::task_scheduler_observer {
 public:
  explicit thread_recorder(tbb::task_arena& a) : tbb::task_scheduler_observer(a) { observe(true); }
  ~thread_recorder() override { observe(false); }
  void on_scheduler_entry(bool) override {
    std::lock_guard<std::mutex> lock(mutex_);
    ids_.insert(std::this_thread::get_id());
  }
  std::size_t distinct() {
    std::lock_guard<std::mutex> lock(mutex_);
    return ids_.size();
  }

 private:
  std::mutex mutex_;
  std::set<std::thread::id> ids_;
};

}  // namespace

TEST_CASE("runs issued from inside TBB tasks of the caller's arena complete without extra threads") {
  const std::vector<prepared> plans = prepare_all();
  const int outer_threads = std::max(2, tbb::info::default_concurrency());
  tbb::task_arena outer(outer_threads);
  tbb::task_arena other(2);
  thread_recorder recorder(outer);
  gn_stress::watchdog dog(kSlow ? 600 : 180, "nested parallelism");

  // Warm up: let TBB start every worker it will ever start for these arenas, then take the thread count.
  for (int w = 0; w < 3; ++w) {
    outer.execute([&] { tbb::parallel_for(0, 1000, [](int) { std::this_thread::yield(); }); });
    other.execute([&] { tbb::parallel_for(0, 1000, [](int) { std::this_thread::yield(); }); });
  }
  const long threads_before = gn_stress::os_threads();

  const int tasks = kSlow ? 32 : 256;
  std::vector<std::vector<float>> out(static_cast<std::size_t>(tasks));
  std::atomic<long> mismatches{0}, errors{0};
  std::atomic<int> max_seen_concurrency{0};
  outer.execute([&] {
    tbb::parallel_for(0, tasks, [&](int t) {
      const prepared& p = plans[static_cast<std::size_t>(t) % kNumShapes];
      std::vector<float>& y = out[static_cast<std::size_t>(t)];
      y.assign(p.size(), 0.0f);
      int seen = tbb::this_task_arena::max_concurrency();
      int expected = max_seen_concurrency.load();
      while (seen > expected && !max_seen_concurrency.compare_exchange_weak(expected, seen)) {
      }
      try {
        switch (t % 4) {
          case 0:  // nested in the current arena (no arena argument)
            p.plan.run(p.x, y, p.gamma, p.beta);
            break;
          case 1:  // nested, naming the arena we are already in
            p.plan.run(p.x, y, p.gamma, p.beta, &outer);
            break;
          case 2:  // from a task of one arena into another arena
            p.plan.run(p.x, y, p.gamma, p.beta, &other);
            break;
          default:  // the C ABI from inside a task (its own cached arena)
            if (gn_group_norm_f32(p.x.data(), y.data(), p.gamma.data(), p.beta.data(), p.sh.batch,
                                  p.sh.channels, p.sh.spatial, p.sh.groups, 1e-5f, 0) != GN_OK)
              ++errors;
            break;
        }
      } catch (...) {
        ++errors;
      }
      if (!same_bits(y, p.serial)) ++mismatches;
    });
  });
  const long threads_after = gn_stress::os_threads();

  CHECK(errors.load() == 0);
  CHECK(mismatches.load() == 0);
  CHECK(max_seen_concurrency.load() == outer_threads);
  // Threads that ever entered the caller's arena: at most its concurrency (the caller + its workers).
  CHECK(recorder.distinct() <= static_cast<std::size_t>(outer_threads));
  // No thread created by the nested runs (the C ABI's cached arenas share TBB's one worker pool, whose size
  // is fixed by the hardware, and the library never starts threads of its own).
  MESSAGE("OS threads before nested runs: " << threads_before << ", after: " << threads_after);
  if (threads_before > 0) CHECK(threads_after <= threads_before);
}
