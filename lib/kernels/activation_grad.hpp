// Derivatives of the fused activations on 16-lane vectors, for the backward pass: dz = dy * act'(z). Plain
// element-wise IEEE float operations (no libm calls, FMA only through simd::fma), so every ISA family gives
// the same bits. Internal linkage per ISA translation unit (see simd.hpp).
//
// A gradient needs a few ulp, not the forward's correctly rounded output: SiLU' uses the forward's exp
// (exp_fast, relative error < 1e-9 before rounding) for the sigmoid; GELU' = Phi(z) + z phi(z) uses exp(-z^2
// / 2) with z^2 split exactly and the Numerical Recipes erfc(u) = t exp(-u^2 + P(t)) (relative error < 1.2e-7
// for u >= 0) for the normal tail. Both are checked against float64 in
// tests/core/test_backward_reference.cpp.
#pragma once

#include "kernels/activation.hpp"
#include "simd/simd.hpp"

namespace groupnorm::detail {
namespace {
namespace act {

// 2^n (1 + w_hi + w_lo) as a float, for n in [-126, 127].
[[gnu::always_inline]] inline vf exp_value(const exp2n& e) noexcept {
  return pow2(e.n) * ((splat(1.0f) + e.w_hi) + e.w_lo);
}

// -1 in the lanes holding a NaN.
[[gnu::always_inline]] inline vi is_nan(vf z) noexcept {
  return simd::mask_greater(bits(z) & 0x7fffffff, 0x7f800000);
}

// SiLU'(z) = s (1 + z (1 - s)) with s = 1 / (1 + e^-z) and 1 - s = e^-z s (no cancellation). |z| is clamped
// to 80, where e^-z is still a normal float; past it the derivative is 1 or 0 to within 1e-33.
[[gnu::always_inline]] inline vf silu_grad(vf z) noexcept {
  const vi mag = bits(z) & 0x7fffffff;
  const vi big = simd::mask_greater(mag, bits_of(80.0f));
  const vf zc = simd::blend(big, simd::bitcast<vf>((bits(z) & bits_of(-0.0f)) | bits_of(80.0f)), z);
  const vf t = exp_value(exp_fast(-zc));
  const vf s = splat(1.0f) / (splat(1.0f) + t);
  const vf g = s * (splat(1.0f) + zc * (t * s));
  return simd::blend(is_nan(z), z, g);
}

// GELU'(z) = Phi(z) + z phi(z) (erf form), with a = min(|z|, 13): phi = exp(-a^2 / 2) / sqrt(2 pi) and the
// tail Q(a) = erfc(a / sqrt 2) / 2 = t exp(-a^2 / 2) exp(P(t)) / 2, t = 1 / (1 + a / (2 sqrt 2)); Phi = Q for
// z < 0, 1 - Q otherwise. Past |z| = 13 the derivative is 1 or 0 to within 1e-35.
[[gnu::always_inline]] inline vf gelu_grad(vf z) noexcept {
  const vi mag = bits(z) & 0x7fffffff;
  const vi neg = bits(z) >> 31;
  const vi big = simd::mask_greater(mag, bits_of(13.0f));
  const vf a = simd::bitcast<vf>(simd::blend(big, vi{} + bits_of(13.0f), mag));
  const vf ah = split_hi(a), al = a - ah;
  const vf h = a * a;
  const vf l = (((ah * ah - h) + ah * al) + ah * al) + al * al;  // a^2 = h + l exactly
  const vf e = exp_value(exp_fast(h * splat(-0.5f), l * splat(-0.5f)));
  const vf t = splat(1.0f) / (splat(1.0f) + a * splat(0.35355339f));
  vf p = splat(0.17087277f);
  p = p * t + splat(-0.82215223f);
  p = p * t + splat(1.48851587f);
  p = p * t + splat(-1.13520398f);
  p = p * t + splat(0.27886807f);
  p = p * t + splat(-0.18628806f);
  p = p * t + splat(0.09678418f);
  p = p * t + splat(0.37409196f);
  p = p * t + splat(1.00002368f);
  p = p * t + splat(-1.26551223f);
  const vf q = (splat(0.5f) * t) * (e * exp_value(exp_fast(p)));
  const vf phi_z = simd::bitcast<vf>(bits(a) | (neg & bits_of(-0.0f))) * (e * splat(0.39894228f));
  const vf g = simd::blend(neg, q, splat(1.0f) - q) + phi_z;
  const vf limit = simd::bitcast<vf>(~neg & bits_of(1.0f));
  return simd::blend(is_nan(z), z, simd::blend(big, limit, g));
}

}  // namespace act

// dy * act'(z). relu passes dy where z > 0 or z is NaN (the forward's output there is z itself), and 0
// where z <= 0, as PyTorch's threshold backward does.
template <activation A>
[[gnu::always_inline]] inline simd::vf activation_backward(simd::vf dy, simd::vf z) noexcept {
  if constexpr (A == activation::relu) {
    const simd::vi b = act::bits(z), mag = b & 0x7fffffff;
    const simd::vi kill = ((b >> 31) & ~act::is_nan(z)) | ~simd::mask_greater(mag, 0);
    return simd::blend(kill, simd::vf{}, dy);
  } else if constexpr (A == activation::silu) {
    return dy * act::silu_grad(z);
  } else if constexpr (A == activation::gelu) {
    return dy * act::gelu_grad(z);
  } else {
    static_assert(A == activation::none, "activation not implemented");
    return dy;
  }
}

}  // namespace
}  // namespace groupnorm::detail
