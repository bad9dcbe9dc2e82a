// NCHW moments pass: a chunk of a contiguous slice, block by block, and batches of small slices in lockstep.
#pragma once

#include <algorithm>
#include <cstddef>

#include "kernels/block_moments.hpp"
#include "kernels/source.hpp"

namespace groupnorm::detail {
namespace {  // internal linkage per ISA translation unit, see simd/simd.hpp

// Slices in lockstep where their accumulators (five vectors each) fit the register file: four on AVX-512's 32
// registers. With 16 (AVX2, SSE2) or 32 quarter-width (NEON) registers they spill to the stack, which
// measured slower than one slice at a time (1x32x8x8 on AVX2: 0.87 -> 0.71 us). The bits do not depend on it.
#if defined(__AVX512F__)
inline constexpr int kLockstepSlices = 4;
#else
inline constexpr int kLockstepSlices = 1;
#endif

// Moments of `count` slices of n <= kBlockElems elements each, `stride` elements apart: each result equals
// chunk_moments of that slice bit for bit (one block merged into an empty total is that block), computed
// kLockstepSlices slices in lockstep.
template <class T, bool Residual>
void small_slices_moments(const void* x, const void* residual, std::size_t stride, std::size_t n,
                          std::size_t count, moments* out) noexcept {
  using src = source<T, Residual>;
  const T* xs = static_cast<const T*>(x);
  const T* rs = static_cast<const T*>(residual);
  auto at = [&](std::size_t k) { return src{xs + k * stride, Residual ? rs + k * stride : nullptr}; };
  std::size_t k = 0;
  if constexpr (kLockstepSlices == 4) {
    for (; k + 4 <= count; k += 4) {
      const src s[4] = {at(k), at(k + 1), at(k + 2), at(k + 3)};
      block_moments_lockstep<4>(s, n, out + k);
    }
  }
  for (; k < count; ++k) {
    const src s = at(k);
    block_moments_lockstep<1>(&s, n, out + k);
  }
}

template <class T, bool Residual>
moments chunk_moments(const void* x, const void* residual, std::size_t n) noexcept {
  const source<T, Residual> s{static_cast<const T*>(x), static_cast<const T*>(residual)};
  moments total;
  for (std::size_t b = 0; b < n; b += kBlockElems) {
    const source<T, Residual> block{s.x + b, Residual ? s.r + b : nullptr};
    merge_into(total, block_moments(block, std::min(kBlockElems, n - b)));
  }
  return total;
}
}  // namespace
}  // namespace groupnorm::detail
