// Copy strategies and the consumer read of tools/floor_copy.hpp.
#include "floor_copy.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace groupnorm::tool {
namespace {

// Below this many elements a GroupNorm run stays on the calling thread (the library's kSerialElems).
constexpr std::size_t kSerialElems = 32 * 1024;
constexpr std::size_t kPieceFloats = 256 * 1024 / sizeof(float);
constexpr std::size_t kLineFloats = 64 / sizeof(float);
constexpr std::size_t kMaxShares = 256;  // shares of one copy (consume keeps one partial sum per share)

bool serial(tbb::task_arena& arena, std::size_t n) {
  return n < kSerialElems || arena.max_concurrency() == 1;
}

// Calls f(k, begin, end) for each thread's share k of [0, n), shares cut on cache lines, statically assigned.
template <class F>
void for_each_share(tbb::task_arena& arena, std::size_t n, F&& f) {
  if (serial(arena, n)) return f(std::size_t{0}, std::size_t{0}, n);
  const std::size_t t = std::min<std::size_t>(kMaxShares, static_cast<std::size_t>(arena.max_concurrency()));
  auto cut = [&](std::size_t k) {
    return std::min(n, (n * k / t + kLineFloats - 1) / kLineFloats * kLineFloats);
  };
  arena.execute([&] {
    tbb::parallel_for(
        tbb::blocked_range<std::size_t>(0, t, 1),
        [&](const tbb::blocked_range<std::size_t>& r) {
          for (std::size_t k = r.begin(); k < r.end(); ++k) f(k, cut(k), cut(k + 1));
        },
        tbb::static_partitioner());
  });
}

void stream_copy(float* dst, const float* src, std::size_t n) {
#if defined(__SSE2__)
  std::size_t i = 0;
  for (; i < n && reinterpret_cast<std::uintptr_t>(dst + i) % 64 != 0; ++i) dst[i] = src[i];
  for (; i + kLineFloats <= n; i += kLineFloats) {  // one cache line per iteration
    _mm_stream_ps(dst + i, _mm_loadu_ps(src + i));
    _mm_stream_ps(dst + i + 4, _mm_loadu_ps(src + i + 4));
    _mm_stream_ps(dst + i + 8, _mm_loadu_ps(src + i + 8));
    _mm_stream_ps(dst + i + 12, _mm_loadu_ps(src + i + 12));
  }
  for (; i < n; ++i) dst[i] = src[i];
  _mm_sfence();
#else
  std::memcpy(dst, src, n * sizeof(float));
#endif
}

}  // namespace

const char* to_string(copy_strategy s) {
  switch (s) {
    case copy_strategy::share_memcpy:
      return "memcpy/thread";
    case copy_strategy::pieces:
      return "memcpy/256KiB";
    case copy_strategy::nontemporal:
      return "nt-stores";
  }
  return "?";
}

void floor_copy(copy_strategy s, tbb::task_arena& arena, float* dst, const float* src, std::size_t n) {
  switch (s) {
    case copy_strategy::share_memcpy:
      return for_each_share(arena, n, [&](std::size_t, std::size_t b, std::size_t e) {
        std::memcpy(dst + b, src + b, (e - b) * sizeof(float));
      });
    case copy_strategy::nontemporal:
      return for_each_share(
          arena, n, [&](std::size_t, std::size_t b, std::size_t e) { stream_copy(dst + b, src + b, e - b); });
    case copy_strategy::pieces: {
      auto piece = [&](std::size_t k) {
        const std::size_t b = k * kPieceFloats, e = std::min(n, b + kPieceFloats);
        std::memcpy(dst + b, src + b, (e - b) * sizeof(float));
      };
      const std::size_t pieces = (n + kPieceFloats - 1) / kPieceFloats;
      if (serial(arena, n)) {
        for (std::size_t k = 0; k < pieces; ++k) piece(k);
        return;
      }
      arena.execute([&] {
        tbb::parallel_for(
            tbb::blocked_range<std::size_t>(0, pieces),
            [&](const tbb::blocked_range<std::size_t>& r) {
              for (std::size_t k = r.begin(); k < r.end(); ++k) piece(k);
            },
            tbb::static_partitioner());
      });
      return;
    }
  }
}

float consume(tbb::task_arena& arena, const float* y, std::size_t n) {
  float partial[kMaxShares] = {};
  for_each_share(arena, n, [&](std::size_t k, std::size_t b, std::size_t e) {
    float acc[16] = {};  // 16 independent lanes: the loop vectorizes without reassociation
    std::size_t i = b;
    for (; i + 16 <= e; i += 16)
      for (int j = 0; j < 16; ++j) acc[j] += y[i + j];
    for (; i < e; ++i) acc[0] += y[i];
    for (float a : acc) partial[k] += a;
  });
  float s = 0;
  for (float p : partial) s += p;
  return s;
}

}  // namespace groupnorm::tool
