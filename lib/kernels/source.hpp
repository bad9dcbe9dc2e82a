// Shared pieces of every kernel pass: the element source (x, or x + residual) and the affine constants of
// y = (v - mean_hi) * scale + shift.
#pragma once

#include <cmath>
#include <cstddef>

#include "kernels/activation.hpp"
#include "kernels/kernels.hpp"
#include "simd/convert.hpp"
#include "simd/simd.hpp"

namespace groupnorm::detail {
namespace {  // internal linkage per ISA translation unit, see simd/simd.hpp

using simd::vf;

// Element source: x, or x + residual (rounded to float once, the same value moments and apply see). vec() is
// read in every hot loop (GROUPNORM_HOT_INLINE).
template <class T, bool Residual>
struct source {
  const T* x;
  const T* r;
  GROUPNORM_HOT_INLINE vf vec(std::size_t i) const noexcept {
    if constexpr (Residual) return storage<T>::load(x + i) + storage<T>::load(r + i);
    return storage<T>::load(x + i);
  }
  float at(std::size_t i) const noexcept {
    if constexpr (Residual) return storage<T>::load1(x + i) + storage<T>::load1(r + i);
    return storage<T>::load1(x + i);
  }
};

// The normalization of a (sample, group) as y = (v - mean_hi) * scale + shift per channel, where mean_hi =
// float(mean) and shift absorbs the rest of the mean. v - mean_hi is exact when v is near the mean
// (Sterbenz), so large offsets (mean 1e4, std 1) keep full precision, which a folded y = v * scale + (beta -
// mean * scale) in float would not (its shift carries an absolute error of ulp(mean * scale)).
struct group_affine {
  float mean_hi;
  double mean_lo;  // mean - mean_hi
  double rstd;
  explicit group_affine(const slice_stats& st) noexcept
      : mean_hi(static_cast<float>(st.mean)), mean_lo(st.mean - mean_hi), rstd(st.rstd) {}
  // Channel c's scale and shift (gamma / beta null: 1 / 0).
  float scale(const float* gamma, std::size_t c) const noexcept {
    return static_cast<float>((gamma ? gamma[c] : 1.0) * rstd);
  }
  float shift(const float* beta, std::size_t c, float scale) const noexcept {
    return static_cast<float>((beta ? beta[c] : 0.0) - mean_lo * scale);
  }
};

// One element through the affine transform and the activation (the scalar tails of the apply kernels),
// rounded exactly like one lane of the vector path.
template <activation A>
inline float apply_one(float v, float mean_hi, float scale, float shift) noexcept {
  return activate<A>(simd::splat(std::fma(v - mean_hi, scale, shift)))[0];
}

}  // namespace
}  // namespace groupnorm::detail
