// Interleaved timing of two functions and 64-byte aligned buffers, shared by `groupnorm bench` and
// `groupnorm floor`.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <new>
#include <utility>
#include <vector>

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

}  // namespace groupnorm::tool
