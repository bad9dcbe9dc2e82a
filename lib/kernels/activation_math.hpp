// Building blocks of the fused activations: double-float ("float + float") arithmetic without FMA, exact
// power-of-two scaling, a single-float exp whose result keeps its leading 1 unrounded, and operations on one
// native register (act::reg). Element-wise IEEE float operations only, so every kernel family gives the same
// bits. Internal linkage per ISA translation unit (see simd/simd.hpp).
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

#include "simd/simd.hpp"

namespace groupnorm::detail {
namespace {

namespace act {
using simd::splat;
using simd::vf;
using simd::vi;
using simd::vu;

// An unevaluated sum hi + lo of two floats.
struct df {
  vf hi, lo;
};

// Float lanes as their bits, and a float constant's bits, for the integer masks of simd/simd.hpp.
[[gnu::always_inline]] inline vi bits(vf v) noexcept {
  return simd::bitcast<vi>(v);
}
inline constexpr std::int32_t bits_of(float f) noexcept {
  return std::bit_cast<std::int32_t>(f);
}

// Dekker's split: a = hi + (a - hi) with both parts of at most 12 significant bits, so products of parts are
// exact (no FMA; valid for |a| < 2^115).
[[gnu::always_inline]] inline vf split_hi(vf a) noexcept {
  const vf t = a * splat(4097.0f);
  return t - (t - a);
}
// hi + lo == a * b exactly (no underflow).
[[gnu::always_inline]] inline df two_prod(vf a, vf b) noexcept {
  const vf p = a * b;
  const vf ah = split_hi(a), bh = split_hi(b);
  const vf al = a - ah, bl = b - bh;
  return {p, (((ah * bh - p) + ah * bl) + al * bh) + al * bl};
}

// hi + lo == a + b exactly, any order of magnitude.
[[gnu::always_inline]] inline df two_sum(vf a, vf b) noexcept {
  const vf s = a + b, bb = s - a;
  return {s, (a - (s - bb)) + (b - bb)};
}

// hi + lo == a + b exactly, for |a| >= |b|.
[[gnu::always_inline]] inline df fast_two_sum(vf a, vf b) noexcept {
  const vf s = a + b;
  return {s, b - (s - a)};
}

// 2^e for e in [-126, 127], built from the exponent bits (exact).
[[gnu::always_inline]] inline vf pow2(vi e) noexcept {
  return simd::bitcast<vf>((e + 127) << 23);
}

// y * 2^-k for k in [0, 252]: two exact-range factors, so a normal result is rounded at most once.
[[gnu::always_inline]] inline vf scale_down(vf y, vi k) noexcept {
  const vi k1 = k >> 1;
  return (y * pow2(-k1)) * pow2(k1 - k);
}

// exp(s + s_lo) = 2^n (1 + w_hi + w_lo) for a float s with |s| <= 180 and |s_lo| <= ulp(s): Cody-Waite
// reduction s = n ln2 + r with n = round(s / ln2) (magic-number rounding), n ln2_hi exact and r_hi = s - n
// ln2_hi exact (Sterbenz), then e^r = 1 + r + r^2 P(r) with P a degree-5 Chebyshev fit (relative error of e^r
// below 8e-10 with the float coefficients on |r| <= 0.35). w_hi = r_hi is exact and |w_lo| < 0.07, so the
// callers' products with w_hi and w_lo leave small rounding errors and the 1 is added without its own
// rounding.
struct exp2n {
  vf w_hi, w_lo;
  vi n;
};
[[gnu::always_inline]] inline exp2n exp_fast(vf s, vf s_lo = vf{}) noexcept {
  constexpr float kMagic = 0x1.8p23f;        // adding it rounds |v| < 2^22 to an integer
  constexpr float kLn2Hi = 0x1.62e4p-1f;     // 15 significant bits: n * kLn2Hi exact for |n| < 512
  constexpr float kLn2Lo = 0x1.7f7d1cp-20f;  // ln 2 - kLn2Hi, rounded
  const vf z = s * splat(0x1.715476p+0f) + splat(kMagic);
  const vf nf = z - splat(kMagic);
  const vf r_hi = s - nf * splat(kLn2Hi);
  const vf r_lo = s_lo - nf * splat(kLn2Lo);
  const vf r = r_hi + r_lo;
  vf p = splat(0x1.a127fcp-13f);
  p = p * r + splat(0x1.6d469p-10f);
  p = p * r + splat(0x1.1110ep-7f);
  p = p * r + splat(0x1.5554e6p-5f);
  p = p * r + splat(0x1.555556p-3f);
  p = p * r + splat(0.5f);
  return {r_hi, r_lo + (r * r) * p, bits(z) - bits_of(kMagic)};
}

// max(v, 0) for integer lanes.
[[gnu::always_inline]] inline vi clamp0(vi v) noexcept {
  return v & ~(v >> 31);
}

// One native register of float / int32 lanes: the whole vf on AVX-512, one piece of it elsewhere. A long
// element-wise function written on the 16-lane struct makes GCC spill its pieces to the stack between steps;
// written on a register and applied piece by piece (each_register) it stays in registers, with the same bits.
namespace reg {
#if defined(__AVX512F__)
using f = vf;
using i = vi;
#else
using f = vf::piece;
using i = vi::piece;
#endif

[[gnu::always_inline]] inline i bits(f v) noexcept {
  return simd::bitcast<i>(v);
}
[[gnu::always_inline]] inline f floats(i v) noexcept {
  return simd::bitcast<f>(v);
}
[[gnu::always_inline]] inline f splat(float v) noexcept {
  return f{} + v;
}
// All-ones where a > c, for a and c in [0, 2^31) (simd::mask_greater on one register).
[[gnu::always_inline]] inline i greater(i a, std::int32_t c) noexcept {
  return (c - a) >> 31;
}
// a where m is set, b elsewhere.
[[gnu::always_inline]] inline i select(i m, i a, i b) noexcept {
  return b ^ ((a ^ b) & m);
}
// max(v, 0).
[[gnu::always_inline]] inline i clamp0(i v) noexcept {
  return v & ~(v >> 31);
}

// Lane-wise minimum and maximum. They differ between ISAs only when an operand is NaN, so callers must not
// let a NaN lane's result depend on them.
[[gnu::always_inline]] inline f min(f a, f b) noexcept {
#if defined(__AVX512F__)
  // Masked form: GCC 12's unmasked one starts from an undefined register (-Wuninitialized).
  return simd::bitcast<f>(_mm512_maskz_min_ps(0xffff, simd::bitcast<__m512>(a), simd::bitcast<__m512>(b)));
#elif defined(__AVX__)
  return simd::bitcast<f>(_mm256_min_ps(simd::bitcast<__m256>(a), simd::bitcast<__m256>(b)));
#elif defined(GROUPNORM_SIMD_NEON)
  return simd::bitcast<f>(vminq_f32(simd::bitcast<float32x4_t>(a), simd::bitcast<float32x4_t>(b)));
#else
  return floats(select(a < b, bits(a), bits(b)));
#endif
}
[[gnu::always_inline]] inline f max(f a, f b) noexcept {
#if defined(__AVX512F__)
  return simd::bitcast<f>(_mm512_maskz_max_ps(0xffff, simd::bitcast<__m512>(a), simd::bitcast<__m512>(b)));
#elif defined(__AVX__)
  return simd::bitcast<f>(_mm256_max_ps(simd::bitcast<__m256>(a), simd::bitcast<__m256>(b)));
#elif defined(GROUPNORM_SIMD_NEON)
  return simd::bitcast<f>(vmaxq_f32(simd::bitcast<float32x4_t>(a), simd::bitcast<float32x4_t>(b)));
#else
  return floats(select(a > b, bits(a), bits(b)));
#endif
}
// All-ones in the NaN lanes.
[[gnu::always_inline]] inline i is_nan(f a) noexcept {
  return a != a;
}

// a * b + c rounded once, as simd::fma: the native instruction, or std::fma lane by lane on the baseline.
[[gnu::always_inline]] inline f fma(f a, f b, f c) noexcept {
#if defined(__AVX512F__)
  return simd::fma(a, b, c);
#elif defined(__FMA__)
  return simd::bitcast<f>(
      _mm256_fmadd_ps(simd::bitcast<__m256>(a), simd::bitcast<__m256>(b), simd::bitcast<__m256>(c)));
#elif defined(GROUPNORM_SIMD_NEON)
  return simd::bitcast<f>(
      vfmaq_f32(simd::bitcast<float32x4_t>(c), simd::bitcast<float32x4_t>(a), simd::bitcast<float32x4_t>(b)));
#else
  f r;
  for (int j = 0; j < static_cast<int>(sizeof r / sizeof r[0]); ++j) r[j] = std::fma(a[j], b[j], c[j]);
  return r;
#endif
}
}  // namespace reg

// fn applied to each native register of v.
template <class F>
[[gnu::always_inline]] inline vf each_register(vf v, F fn) noexcept {
#if defined(__AVX512F__)
  return fn(v);
#else
  vf r;
#pragma GCC unroll 4
  for (int k = 0; k < vf::kPieces; ++k) r.p[k] = fn(v.p[k]);
  return r;
#endif
}

}  // namespace act

}  // namespace
}  // namespace groupnorm::detail
