// Interleaved timing of two functions, 64-byte aligned buffers and the parallel memcpy floor, shared by
// `groupnorm bench` (both directions) and `groupnorm floor`.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>

namespace groupnorm::tool {

using clock_type = std::chrono::steady_clock;

// Buffers on 64-byte boundaries, so a vector access never straddles two cache lines (it would cost two).
template <class T>
struct aligned_allocator {
  using value_type = T;
  aligned_allocator() = default;
  template <class U>
  aligned_allocator(const aligned_allocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64))); }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t(64)); }
  bool operator==(const aligned_allocator&) const noexcept { return true; }
};
using aligned_vector = std::vector<float, aligned_allocator<float>>;

struct timing {
  double median_s;
  double min_s;
};

// Interleaved sampling of two functions: each sample times `k` back-to-back calls, with k chosen so one
// sample lasts >= 50 us (timer overhead stays negligible even for the tiny shape).
template <class A, class B>
std::pair<timing, timing> sample_pair(A&& fa, B&& fb, double seconds) {
  auto time_k = [](auto& f, int k) {
    const auto t0 = clock_type::now();
    for (int i = 0; i < k; ++i) f();
    return std::chrono::duration<double>(clock_type::now() - t0).count();
  };
  for (int i = 0; i < 3; ++i) fa(), fb();  // warm-up: pages, caches, arena threads
  int k = 1;
  while (time_k(fa, k) < 50e-6 && k < (1 << 20)) k *= 2;
  std::vector<double> a, b;
  const auto start = clock_type::now();
  while ((a.size() < 7 || std::chrono::duration<double>(clock_type::now() - start).count() < seconds) &&
         a.size() < 2000) {
    a.push_back(time_k(fa, k) / k);
    b.push_back(time_k(fb, k) / k);
  }
  auto summarize = [](std::vector<double>& v) {
    std::sort(v.begin(), v.end());
    return timing{v[v.size() / 2], v.front()};
  };
  return {summarize(a), summarize(b)};
}

// The floor: copy the same bytes in the same arena, split the same way a GroupNorm run is (on the calling
// thread below the library's serial threshold, else a static partition over the arena).
inline void parallel_memcpy(tbb::task_arena& arena, void* dst, const void* src, std::size_t bytes) {
  constexpr std::size_t serial_bytes = 32 * 1024 * sizeof(float);
  constexpr std::size_t piece = 64 * 1024;
  if (bytes < serial_bytes || arena.max_concurrency() == 1) {
    std::memcpy(dst, src, bytes);
    return;
  }
  arena.execute([&] {
    tbb::parallel_for(
        tbb::blocked_range<std::size_t>(0, (bytes + piece - 1) / piece),
        [&](const tbb::blocked_range<std::size_t>& r) {
          const std::size_t begin = r.begin() * piece, end = std::min(bytes, r.end() * piece);
          std::memcpy(static_cast<char*>(dst) + begin, static_cast<const char*>(src) + begin, end - begin);
        },
        tbb::static_partitioner());
  });
}

// Samples of one function timed alone (no other function between its calls), each sample `k` back-to-back
// calls with k chosen as in sample_pair; at least 7 samples and `seconds` of sampling. Per-call seconds.
template <class F>
std::vector<double> sample_alone(F&& f, double seconds) {
  auto time_k = [&](int k) {
    const auto t0 = clock_type::now();
    for (int i = 0; i < k; ++i) f();
    return std::chrono::duration<double>(clock_type::now() - t0).count();
  };
  for (int i = 0; i < 3; ++i) f();
  int k = 1;
  while (time_k(k) < 50e-6 && k < (1 << 20)) k *= 2;
  std::vector<double> v;
  const auto start = clock_type::now();
  while ((v.size() < 7 || std::chrono::duration<double>(clock_type::now() - start).count() < seconds) &&
         v.size() < 2000)
    v.push_back(time_k(k) / k);
  return v;
}

inline timing summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return timing{v[v.size() / 2], v.front()};
}

}  // namespace groupnorm::tool
