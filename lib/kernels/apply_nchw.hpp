// NCHW apply pass: y = activation((v - mean_hi) * scale + shift) over a range of a slice, with optional
// non-temporal stores for outputs too large to stay in cache.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "kernels/source.hpp"

namespace groupnorm::detail {
namespace {  // internal linkage per ISA translation unit, see simd/simd.hpp

// The affine constants come from group_affine (kernels/source.hpp); channel c of the slice owns elements
// [c * spatial, (c + 1) * spatial).
template <class T, bool Residual, bool WriteSum, activation A>
void apply(const void* x, const void* residual, void* y, void* sum, std::size_t begin, std::size_t end,
           std::size_t spatial, const float* gamma, const float* beta, slice_stats stats,
           bool stream) noexcept {
  const source<T, Residual> s{static_cast<const T*>(x), static_cast<const T*>(residual)};
  T* out = static_cast<T*>(y);
  T* sum_out = static_cast<T*>(sum);
  const group_affine aff(stats);
  const float mean_hi = aff.mean_hi;
  const vf mean_v = simd::splat(mean_hi);
  // Non-temporal stores need 64-byte aligned destinations; only float output streams.
  constexpr bool can_stream = std::is_same_v<T, float>;
  stream = stream && can_stream;
  std::size_t i = begin;
  for (std::size_t c = begin / spatial; i < end; ++c) {
    const std::size_t seg_end = std::min(end, (c + 1) * spatial);
    const float scale = aff.scale(gamma, c);
    const float shift = aff.shift(beta, c, scale);
    const vf scale_v = simd::splat(scale), shift_v = simd::splat(shift);
    auto one = [&](std::size_t at) {
      const float v = s.at(at);
      if constexpr (WriteSum) storage<T>::store1(sum_out + at, v);
      storage<T>::store1(out + at, apply_one<A>(v, mean_hi, scale, shift));
    };
    if constexpr (can_stream) {
      if (stream) {
        for (; i < seg_end && reinterpret_cast<std::uintptr_t>(out + i) % 64 != 0; ++i) one(i);
        for (; i + simd::kWidth <= seg_end; i += simd::kWidth) {
          const vf v = s.vec(i);
          if constexpr (WriteSum) storage<T>::store(sum_out + i, v);
          simd::stream(out + i, activate<A>(simd::fma(v - mean_v, scale_v, shift_v)));
        }
      }
    }
    for (; i + simd::kWidth <= seg_end; i += simd::kWidth) {
      const vf v = s.vec(i);
      if constexpr (WriteSum) storage<T>::store(sum_out + i, v);
      storage<T>::store(out + i, activate<A>(simd::fma(v - mean_v, scale_v, shift_v)));
    }
    for (; i < seg_end; ++i) one(i);
  }
  if (stream) simd::stream_fence();
}

}  // namespace
}  // namespace groupnorm::detail
