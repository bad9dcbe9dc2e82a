// Helpers shared by the stress suites.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>

namespace gn_stress {

// True in sanitizer builds (set by tests/stress/CMakeLists.txt): budgets shrink, the huge-tensor test is
// skipped.
constexpr bool kSanitized = GROUPNORM_TEST_SANITIZED != 0;
// True when the tests run under an emulator (cross builds, tests/stress/CMakeLists.txt): tens of times
// slower, so budgets shrink as under sanitizers and the huge-tensor test is skipped.
constexpr bool kEmulated = GROUPNORM_TEST_EMULATED != 0;
constexpr bool kSlow = kSanitized || kEmulated;

// Seconds a time-bounded stress loop may run: GROUPNORM_STRESS_SECONDS, else 20 (Release) or 5 (sanitizers,
// emulation).
inline double stress_seconds() {
  if (const char* s = std::getenv("GROUPNORM_STRESS_SECONDS")) return std::atof(s);
  return kSlow ? 5.0 : 20.0;
}

// Fails the whole process (and so the test) if the guarded scope does not finish in time: a deadlock becomes
// a red test with a message instead of a CI job that hangs until its global timeout.
class watchdog {
 public:
  watchdog(double seconds, std::string what) : what_(std::move(what)) {
    thread_ = std::thread([this, seconds] {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!cv_.wait_for(lock, std::chrono::duration<double>(seconds), [this] { return done_; })) {
        std::fprintf(stderr, "watchdog: '%s' did not finish within %.0f s (deadlock?)\n", what_.c_str(),
                     seconds);
        std::fflush(stderr);
        std::_Exit(3);
      }
    });
  }
  ~watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;

 private:
  std::string what_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// Number of OS threads of this process (Linux /proc), or -1 when unknown.
inline long os_threads() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "Threads:") {
      long n = -1;
      in >> n;
      return n;
    }
    std::getline(in, key);
  }
  return -1;
}

// MemAvailable from /proc/meminfo in bytes, or 0 when unknown.
inline unsigned long long mem_available_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  while (in >> key) {
    if (key == "MemAvailable:") {
      unsigned long long kb = 0;
      in >> kb;
      return kb * 1024ull;
    }
    std::getline(in, key);
  }
  return 0;
}

}  // namespace gn_stress
