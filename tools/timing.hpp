// Interleaved timing of two functions, shared by `groupnorm bench` and `groupnorm floor`.
#pragma once

#include <algorithm>
#include <chrono>
#include <utility>
#include <vector>

namespace groupnorm::tool {

using clock_type = std::chrono::steady_clock;

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
