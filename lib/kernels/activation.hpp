// Fused activations on 16-lane vectors, in plain IEEE float operations (no libm calls, no FMA contraction),
// so every ISA family gives the same bits. Internal linkage per ISA translation unit (see simd.hpp).
//
// SiLU and GELU are evaluated with a few double-float ("float + float") steps where a single float rounding
// would cost accuracy: Dekker's exact product (no FMA), exact two-sums, an exp that returns 2^-k * (h + l)
// with a relative error below 2^-26, and a division corrected by its exact remainder. Everything is
// element-wise, so the result of a lane depends only on that lane's input, whatever the vector width the
// compiler maps vf to.
#pragma once

#include <bit>
#include <cstdint>

#include "groupnorm/groupnorm.hpp"
#include "kernels/simd.hpp"

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

// Lane masks and selects in integer arithmetic only. GCC 12 scalarizes float comparisons and vector
// conditionals (?:) on 16-lane vectors when the target's vectors are narrower (SSE2, AVX2), with a branch per
// lane; wrapping integer subtraction, arithmetic shifts and bitwise blends stay vector operations everywhere.
inline vi bits(vf v) noexcept {
  return simd::bitcast<vi>(v);
}
inline constexpr std::int32_t bits_of(float f) noexcept {
  return std::bit_cast<std::int32_t>(f);
}
// -1 where u > c, else 0, for u and c in [0, 2^31) (such as the bits of non-negative floats).
inline vi greater(vi u, std::int32_t c) noexcept {
  return simd::bitcast<vi>(simd::splatu(static_cast<std::uint32_t>(c)) - simd::bitcast<vu>(u)) >> 31;
}
// -1 where u < c, else 0, same domain.
inline vi less(vi u, std::int32_t c) noexcept {
  return simd::bitcast<vi>(simd::bitcast<vu>(u) - simd::splatu(static_cast<std::uint32_t>(c))) >> 31;
}
inline vi select(vi m, vi a, vi b) noexcept {
  return b ^ ((a ^ b) & m);
}
inline vf select(vi m, vf a, vf b) noexcept {
  return simd::bitcast<vf>(select(m, bits(a), bits(b)));
}

// -0 in every lane (splat(-0.0f) is +0: it adds -0 to a zero vector).
inline vf negative_zero() noexcept {
  return simd::bitcast<vf>(simd::splatu(0x80000000u));
}

// Dekker: hi + lo == a * b exactly (no FMA; valid for |a|, |b| < 2^115 and no underflow).
inline vf split_hi(vf a) noexcept {
  const vf t = a * splat(4097.0f);
  return t - (t - a);
}
inline df two_prod(vf a, vf b) noexcept {
  const vf p = a * b;
  const vf ah = split_hi(a), bh = split_hi(b);
  const vf al = a - ah, bl = b - bh;
  return {p, (((ah * bh - p) + ah * bl) + al * bh) + al * bl};
}

// hi + lo == a + b exactly, for |a| >= |b|.
inline df fast_two_sum(vf a, vf b) noexcept {
  const vf s = a + b;
  return {s, b - (s - a)};
}

// 2^e for e in [-126, 127], built from the exponent bits (exact).
inline vf pow2(vi e) noexcept {
  return simd::bitcast<vf>((e + 127) << 23);
}

// y * 2^-k for k in [0, 252]: two exact-range factors, so a normal result is rounded at most once.
inline vf scale_down(vf y, vi k) noexcept {
  const vi k1 = k >> 1;
  return (y * pow2(-k1)) * pow2(k1 - k);
}

// exp(s_hi + s_lo) = 2^-k * (h + l) for -110 <= s_hi <= 0 and |s_lo| <= ulp(s_hi), relative error below 2^-26
// (a quarter of a float ulp). Cody-Waite reduction r = s + k ln2 with ln2_hi * k exact and r_hi exact
// (Sterbenz), a degree-8 Taylor polynomial for exp(r) - 1 - r on |r| <= 0.35 (truncation < 2^-32), and
// 1 + r_hi kept exact as h + l.
struct exp_parts {
  vf h, l;
  vi k;
};
inline exp_parts exp_neg(vf s_hi, vf s_lo) noexcept {
  constexpr float kLn2Hi = 0x1.62e4p-1f;     // 15 significant bits: k * kLn2Hi exact for k < 512
  constexpr float kLn2Lo = 0x1.7f7d1cp-20f;  // ln 2 - kLn2Hi, rounded
  const vi k = __builtin_convertvector(s_hi * splat(-0x1.715476p+0f) + splat(0.5f), vi);  // s_hi <= 0: round
  const vf kf = __builtin_convertvector(k, vf);
  const vf r_hi = s_hi + kf * splat(kLn2Hi);  // exact
  const vf r_lo = s_lo + kf * splat(kLn2Lo);
  const vf r = r_hi + r_lo;
  vf p = splat(1.0f / 40320.0f);
  p = p * r + splat(1.0f / 5040.0f);
  p = p * r + splat(1.0f / 720.0f);
  p = p * r + splat(1.0f / 120.0f);
  p = p * r + splat(1.0f / 24.0f);
  p = p * r + splat(1.0f / 6.0f);
  p = p * r + splat(0.5f);
  const vf c = (r * r) * p;  // exp(r) - 1 - r
  const df one_r = fast_two_sum(splat(1.0f), r_hi);
  const df hl = fast_two_sum(one_r.hi, one_r.lo + (r_lo + c));  // normalized: |l| <= ulp(h) / 2
  return {hl.hi, hl.lo, k};
}

// SiLU(x) = x * sigmoid(x) = x / (1 + exp(-x)), written for a = |x| as
//   x >= 0: x / (1 + t),   x < 0: x * t / (1 + t),   t = exp(-a) = 2^-k (h + l),
// with 1 + t and x * (h + l) as double-floats and one corrected division, then the exact 2^-k scaling.
// Measured (every float in [-100, 100] against float64 x / (1 + exp(-x)), /tmp sweep): max error
// 0.71 ulp where the result is normal; subnormal results (x < -91.86) within 0.81 * 2^-149 of the float64
// value.
// Special values: NaN -> NaN, +inf -> +inf, -inf -> -0, +-0 -> +-0, x < -120 -> -0 (the exact value
// underflows).
inline vf silu(vf x) noexcept {
  const vi neg = bits(x) >> 31;  // -1 where the sign bit is set
  const vi mag = bits(x) & 0x7fffffff;
  // The math runs on a = min(|x|, 120) (NaN -> 120), xc = a with the sign of x: finite, bounded lanes only.
  const vf a = select(greater(mag, bits_of(120.0f)), splat(120.0f), simd::bitcast<vf>(mag));
  const vf xc = simd::bitcast<vf>(bits(a) | (neg & bits_of(-0.0f)));
  const exp_parts e = exp_neg(-a, vf{});
  // 1 + t: beyond 2^-60 t no longer matters, and 2^-60 keeps the scale factor normal.
  const vf sc = pow2(-select(greater(e.k, 60), vi{} + 60, e.k));
  df s = fast_two_sum(splat(1.0f), e.h * sc);
  s.lo += e.l * sc;
  // Numerator x * (h + l) for x < 0 (scaled by 2^-k below), x for x >= 0.
  df n = two_prod(xc, select(neg, e.h, splat(1.0f)));
  n.lo += xc * select(neg, e.l, vf{});
  // (n.hi + n.lo) / (s.hi + s.lo) with one final rounding: q + remainder / divisor.
  const vf q = n.hi / s.hi;
  const df qs = two_prod(q, s.hi);
  const vf rem = (((n.hi - qs.hi) - qs.lo) + n.lo) - q * s.lo;
  vf y = scale_down(q + rem / s.hi, neg & e.k);
  y = select(less(mag, bits_of(0x1p-26f)), x * splat(0.5f), y);  // x/2 + x^2/4 rounds to x/2 (keeps -0)
  y = select(~neg & greater(mag, bits_of(30.0f)), x, y);         // exp(-x) < 2^-43: rounds to x (and +inf)
  y = select(neg & greater(mag, bits_of(120.0f)), negative_zero(), y);  // |x| e^x < 2^-160 (and -inf)
  return select(greater(mag, 0x7f800000), x, y);                        // NaN -> NaN
}

// GELU(x) = 0.5 x (1 + erf(x / sqrt 2)) = x * Phi(x), with Phi(x) = 1 - Q(a) for x >= 0 and Q(a) for x < 0,
// a = |x|, Q(a) = 0.5 erfc(a / sqrt 2) the upper normal tail. Q is computed as exp(-a^2 / 2) * G(a) with
// G(a) = Q(a) exp(a^2 / 2) (smooth, 0.5 at 0, ~1 / (a sqrt(2 pi)) for large a), so tiny tails keep their
// relative accuracy: a^2 / 2 is exact as a double-float, exp as above, and G is a degree-9 polynomial in
// d = a - c on 8 intervals (Chebyshev fits, relative error < 4e-9 with the float coefficients; d exact by
// Sterbenz) whose first two terms are summed in double-float. Measured (every float in [-100, 100] against
// float64 0.5 x erfc(-x / sqrt 2), /tmp sweep): max error 0.74 ulp where the result is normal; subnormal
// results (x < -13.15) within 0.80 * 2^-149 of the float64 value.
// Special values: NaN -> NaN, +inf -> +inf, -inf -> -0, +-0 -> +-0, x < -14.5 -> -0 (the exact value
// underflows).
inline vf gelu(vf x) noexcept {
  // Per interval: c, G(c) as hi + lo, G'(c) as hi + lo, then the coefficients of d^2 .. d^9.
  static constexpr float kBounds[7] = {0.5f, 1.5f, 2.5f, 3.5f, 5.0f, 7.0f, 10.0f};
  static constexpr float kCoef[8][13] = {
      {0x0.0p+0f, 0x1.0p-1f, -0x1.0c7bfcp-43f, -0x1.988454p-2f, 0x1.871d0ap-27f,  // a in [0, 0.5)
       0x1.0p-2f, -0x1.10582cp-3f, 0x1.fffdcp-5f, -0x1.b39e2ep-6f, 0x1.541666p-7f, -0x1.e3628p-9f,
       0x1.1fef7ep-10f, -0x1.a52d48p-13f},
      {0x1.0p+0f, 0x1.0bdb2ep-2f, 0x1.eaf118p-33f, -0x1.19524ap-3f, -0x1.cd9cd8p-29f,  // a in [0.5, 1.5)
       0x1.fcc822p-5f, -0x1.9b00aep-6f, 0x1.2f487ap-7f, -0x1.9efb8cp-9f, 0x1.09cf44p-10f, -0x1.41feb8p-12f,
       0x1.843878p-14f, -0x1.a97666p-16f},
      {0x1.0p+1f, 0x1.5845dcp-3f, 0x1.5a652ap-28f, -0x1.00f9dap-4f, -0x1.019f78p-30f,  // a in [1.5, 2.5)
       0x1.5d300ap-6f, -0x1.b75f1cp-8f, 0x1.03012ap-9f, -0x1.2096dp-11f, 0x1.31c07p-13f, -0x1.35eaa6p-15f,
       0x1.37f434p-17f, -0x1.23eac2p-19f},
      {0x1.8p+1f, 0x1.f1b89cp-4f, 0x1.1902a4p-31f, -0x1.19cef2p-5f, 0x1.d137a8p-30f,  // a in [2.5, 3.5)
       0x1.2c08cap-7f, -0x1.2ed734p-9f, 0x1.239da4p-11f, -0x1.0d3692p-13f, 0x1.de503cp-16f, -0x1.9a6e4ap-18f,
       0x1.5da116p-20f, -0x1.1990b6p-22f},
      {0x1.1p+2f, 0x1.6e040ap-4f, -0x1.1ddf16p-29f, -0x1.3a0094p-6f, 0x1.5a86fap-31f,  // a in [3.5, 5)
       0x1.031b68p-8f, -0x1.9ccf9p-11f, 0x1.3e696ap-13f, -0x1.dcccc6p-16f, 0x1.5b0c1p-18f, -0x1.ecacf6p-21f,
       0x1.63504ep-23f, -0x1.e0705ep-26f},
      {0x1.8p+2f, 0x1.095608p-4f, 0x1.8f75d8p-29f, -0x1.5068c2p-7f, -0x1.b9a728p-34f,  // a in [5, 7)
       0x1.a0eee4p-10f, -0x1.f9cc9cp-13f, 0x1.2cabe6p-15f, -0x1.5eb048p-18f, 0x1.91534p-21f, -0x1.c3c42cp-24f,
       0x1.06081ep-26f, -0x1.1d25a2p-29f},
      {0x1.1p+3f, 0x1.7b5f34p-5f, -0x1.df1404p-30f, -0x1.5bcb3ep-8f, -0x1.fb7b1cp-33f,  // a in [7, 10)
       0x1.3ae804p-11f, -0x1.19ba32p-14f, 0x1.f2479ap-18f, -0x1.b3b6f4p-21f, 0x1.78553ep-24f, -0x1.421cfp-27f,
       0x1.22a4cep-30f, -0x1.e6f784p-34f},
      {0x1.88p+3f, 0x1.090b0ap-5f, -0x1.077b26p-31f, -0x1.55b62ap-9f, 0x1.739684p-34f,  // a in [10, 14.5]
       0x1.b5c91p-13f, -0x1.16b3e2p-16f, 0x1.60b5acp-20f, -0x1.bbb20cp-24f, 0x1.14d98cp-27f, -0x1.583edcp-31f,
       0x1.cbbabap-35f, -0x1.1a5ea8p-38f},
  };
  const vi neg = bits(x) >> 31;  // -1 where the sign bit is set
  const vi mag = bits(x) & 0x7fffffff;
  // The math runs on a = min(|x|, 14.5) (NaN -> 14.5), xc = a with the sign of x.
  const vf a = select(greater(mag, bits_of(14.5f)), splat(14.5f), simd::bitcast<vf>(mag));
  const vf xc = simd::bitcast<vf>(bits(a) | (neg & bits_of(-0.0f)));

  vf cf[13];
  for (int j = 0; j < 13; ++j) cf[j] = splat(kCoef[0][j]);
  for (int i = 0; i < 7; ++i) {
    const vi in = ~less(bits(a), bits_of(kBounds[i]));  // a >= bound
    for (int j = 0; j < 13; ++j) cf[j] = select(in, splat(kCoef[i + 1][j]), cf[j]);
  }
  const vf d = a - cf[0];  // exact: c / 2 <= a <= 2 c on every interval but the first (c = 0)
  vf t = cf[12];
  for (int j = 11; j >= 5; --j) t = t * d + cf[j];
  t = (d * d) * t;
  df m = two_prod(cf[3], d);
  m.lo += cf[4] * d;
  df g = fast_two_sum(cf[1], m.hi);  // G(a) = g.hi + g.lo
  g.lo += (cf[2] + m.lo) + t;
  g = fast_two_sum(g.hi, g.lo);

  const df sq = two_prod(a, a);
  const exp_parts e = exp_neg(sq.hi * splat(-0.5f), sq.lo * splat(-0.5f));
  df q = two_prod(e.h, g.hi);  // Q(a) = 2^-k * (q.hi + q.lo)
  q.lo += e.h * g.lo + e.l * g.hi;
  // 1 - Q for x >= 0 (k <= 100 keeps the scale factor normal; Q < 2^-100 no longer matters).
  const vf sc = pow2(-select(greater(e.k, 100), vi{} + 100, e.k));
  df p = fast_two_sum(splat(1.0f), -(q.hi * sc));
  p.lo -= q.lo * sc;

  const df xp = two_prod(xc, select(neg, q.hi, p.hi));
  vf y = scale_down(xp.hi + (xp.lo + xc * select(neg, q.lo, p.lo)), neg & e.k);
  y = select(less(mag, bits_of(0x1p-27f)), x * splat(0.5f), y);  // x/2 + x^2/sqrt(2 pi) rounds to x/2
  y = select(~neg & ~less(mag, bits_of(10.0f)), x, y);           // Q(10) < 2^-76: rounds to x (and +inf)
  y = select(neg & greater(mag, bits_of(14.5f)), negative_zero(), y);  // |x| Q(|x|) < 2^-152 (and -inf)
  return select(greater(mag, 0x7f800000), x, y);                       // NaN -> NaN
}

}  // namespace act

template <activation A>
inline simd::vf activate(simd::vf v) noexcept {
  if constexpr (A == activation::relu) {
    // v < 0 (so -0 and NaNs of either sign pass through), as integer masks: see select() above.
    const simd::vi b = act::bits(v), mag = b & 0x7fffffff;
    return act::select((b >> 31) & act::greater(mag, 0) & act::less(mag, 0x7f800001), simd::vf{}, v);
  } else if constexpr (A == activation::silu) {
    return act::silu(v);
  } else if constexpr (A == activation::gelu) {
    return act::gelu(v);
  } else {
    static_assert(A == activation::none, "activation not implemented");
    return v;
  }
}

}  // namespace
}  // namespace groupnorm::detail
