// Fused activations on 16-lane vectors, in plain IEEE float operations (no libm calls, FMA only through
// act::reg::fma / simd::fma, which round once on every family), so every ISA family gives the same bits.
// Internal linkage per ISA translation unit (see simd/simd.hpp).
//
// SiLU is built for speed at a bound of 2 ulp: one exp (Cody-Waite reduction with an exact high part, a
// degree-7 polynomial), one division whose denominator is formed with a single rounding, and power-of-two
// scalings that keep the negative tail and its subnormal results accurate; it computes on one native
// register at a time. GELU is about correctly rounded: the same exp in its double-float form (the 1 added
// without a rounding of its own), Dekker's exact products (no FMA), exact two-sums, exp(-a^2 / 2) with a^2
// split exactly, a per-binade polynomial for the smooth factor G(a) = Q(a) exp(a^2 / 2) (coefficients
// fetched by a table lookup on the exponent bits), and its large terms summed exactly. Everything is
// element-wise, so the result of a lane depends only on that lane's input, whatever the vector width.
#pragma once

#include <cstdint>

#include "groupnorm/groupnorm.hpp"
#include "kernels/activation_math.hpp"
#include "simd/simd.hpp"

namespace groupnorm::detail {
namespace {

namespace act {
using simd::splat;
using simd::vf;
using simd::vi;

// SiLU(x) = x / (1 + e^-x) on one register. With e^-x = 2^-m (1 + w) (m = round(x / ln 2)),
// 1 + e^-x = 2^-m d with d = 2^m + 1 + w, so y = 2^m x / d: 2^m + 1 is split exactly into c + c_lo, d rounds
// once (once more, far below an ulp of d, where c_lo is not zero), and the result rounds three times in all
// (w, d, the quotient; the power-of-two scaling is exact unless the result is subnormal). Measured by
// tools/activation_sweep.cpp (every float in [-100, 100] against float64 x / (1 + exp(-x))): max error
// 1.59 ulp where the result is normal, 1.27 * 2^-149 where it is subnormal (x < -91.9). Special values:
// NaN -> NaN, +inf -> +inf, -inf -> -0, +-0 -> +-0, x <= -109 -> -0 (the exact value rounds to zero).
[[gnu::always_inline]] inline reg::f silu(reg::f x) noexcept {
  // The numerator xn = max(x, -109), where the exact result rounds to -0; the exp's argument xc = min(xn,
  // 88), past which 2^m + 1 + w rounds to 2^m and y to x. NaN lanes compute anything: they return x.
  const reg::f xn = reg::max(x, reg::splat(-109.0f));
  const reg::f xc = reg::min(xn, reg::splat(88.0f));
  // m by the magic-number rounding; -x + m ln 2 = r_hi + r_lo with r_hi exact (ln2_hi m is exact for
  // |m| < 2^8, and |r_hi| < 0.5 is a multiple of the spacing of xc and of ln2_hi m); e^r = 1 + w with
  // w = r + r^2 P(r) (exp_fast's polynomial, relative error < 8e-10).
  constexpr float kMagic = 0x1.8p23f;        // adding it rounds |v| < 2^22 to an integer
  constexpr float kLn2Hi = 0x1.62e43p-1f;    // ln 2 rounded to float
  constexpr float kLn2Lo = -0x1.05c61p-29f;  // ln 2 - kLn2Hi, rounded
  const reg::f z = reg::fma(xc, reg::splat(0x1.715476p+0f), reg::splat(kMagic));
  const reg::f mf = z - kMagic;
  const reg::f r_hi = reg::fma(mf, reg::splat(kLn2Hi), -xc);
  const reg::f r_lo = mf * kLn2Lo;
  const reg::f r = r_hi + r_lo;
  reg::f p = reg::splat(0x1.a127fcp-13f);
  p = reg::fma(p, r, reg::splat(0x1.6d469p-10f));
  p = reg::fma(p, r, reg::splat(0x1.1110ep-7f));
  p = reg::fma(p, r, reg::splat(0x1.5554e6p-5f));
  p = reg::fma(p, r, reg::splat(0x1.555556p-3f));
  p = reg::fma(p, r, reg::splat(0.5f));
  const reg::f w = reg::fma(r * r, p, r_lo) + r_hi;
  const reg::i m = reg::bits(z) - bits_of(kMagic);  // in [-157, 127]
  // g = 2^m (0 below 2^-126, where it is lost next to 1 + w anyway); g + 1 = c + c_lo exactly.
  const reg::f g = reg::floats(reg::clamp0(m + 127) << 23);
  const reg::f big = reg::max(g, reg::splat(1.0f)), small = reg::min(g, reg::splat(1.0f));
  const reg::f c = big + small;
  const reg::f c_lo = small - (c - big);
  const reg::f d = (c_lo + w) + c;
  // The quotient times 2^m in two exact steps, so a subnormal result rounds about once.
  const reg::i m1 = m >> 1;
  const reg::f y = ((xn / d) * reg::floats((m1 + 127) << 23)) * reg::floats((m - m1 + 127) << 23);
  return reg::floats(reg::select(reg::is_nan(x), reg::bits(x), reg::bits(y)));
}

// GELU(x) = 0.5 x (1 + erf(x / sqrt 2)) = x Phi(x): x Q(a) for x < 0 and x - x Q(a) for x >= 0, with a = |x|
// and Q(a) = 0.5 erfc(a / sqrt 2) = exp(-a^2 / 2) G(a) the upper normal tail. G (smooth, 0.5 at 0, ~1 / (a
// sqrt(2 pi)) for large a) is a Chebyshev fit of degree <= 11 in d = a - c on each binade [0, 0.5), [0.5, 1),
// .., [8, 16) (relative error < 6e-9 with the float coefficients; d exact by Sterbenz, c = 0 on the first),
// its constant and linear terms carried in double-float. x G (1 + w) is then a sum of exact products whose
// large terms are added exactly, so tiny tails keep their relative accuracy and the result rounds about once;
// for x >= 0, x - 2^n (..) starts from an exact double-float difference. Measured by
// tools/activation_sweep.cpp (every float in [-100, 100] against float64 0.5 x erfc(-x / sqrt 2)): max error
// 0.88 ulp where the result is normal; subnormal results (x < -13.15) within 0.80 * 2^-149 of the float64
// value. Special values: NaN -> NaN, +inf -> +inf, -inf -> -0, +-0 -> +-0, x < -14.5 -> -0 (the exact value
// underflows).
[[gnu::always_inline]] inline vf gelu(vf x) noexcept {
  // Per binade i (column; 6 and 7 repeat 5): c, c0 (the constant term rounded) split as hi (12 bits) + lo,
  // the constant term's remainder, the remainder of the d coefficient, then the coefficients of d^1 .. d^11
  // rounded.
  static constexpr float kT[16][8] = {
      {0.0f, 0x1.8p-1f, 0x1.8p+0f, 0x1.8p+1f, 0x1.8p+2f, 0x1.8p+3f, 0x1.8p+3f, 0x1.8p+3f},
      {0x1.0p-1f, 0x1.336p-2f, 0x1.a56p-3f, 0x1.f1ap-4f, 0x1.094p-4f, 0x1.0e6p-5f, 0x1.0e6p-5f, 0x1.0e6p-5f},
      {0.0f, 0x1.024p-14f, 0x1.056p-15f, 0x1.89cp-16f, 0x1.608p-16f, 0x1.dcep-17f, 0x1.dcep-17f,
       0x1.dcep-17f},
      {-0x1.6e54acp-34f, -0x1.086b3cp-27f, -0x1.a5db52p-29f, 0x1.53fp-31f, 0x1.8f62bep-29f, -0x1.cb2486p-30f,
       -0x1.cb2486p-30f, -0x1.cb2486p-30f},
      {0x1.8c5d5cp-29f, 0x1.7d38e8p-28f, 0x1.130c44p-32f, 0x1.cb9d2ep-30f, 0x1.9002p-32f, -0x1.be2228p-35f,
       -0x1.be2228p-35f, -0x1.be2228p-35f},
      {-0x1.988452p-2f, -0x1.63e074p-3f, -0x1.71c04cp-4f, -0x1.19cef2p-5f, -0x1.5068c4p-7f, -0x1.63cfc8p-9f,
       -0x1.63cfc8p-9f, -0x1.63cfc8p-9f},
      {0x1.ffff86p-3f, 0x1.5bf7f4p-4f, 0x1.204038p-5f, 0x1.2c08bep-7f, 0x1.a0eee4p-10f, 0x1.d0fb72p-13f,
       0x1.d0fb72p-13f, 0x1.d0fb72p-13f},
      {-0x1.10508cp-3f, -0x1.2c809ep-5f, -0x1.9980c8p-7f, -0x1.2ed72ap-9f, -0x1.f9cb5ep-13f, -0x1.2ddfacp-16f,
       -0x1.2ddfacp-16f, -0x1.2ddfacp-16f},
      {0x1.ff09a6p-5f, 0x1.d687ap-7f, 0x1.0d6064p-8f, 0x1.23a34ap-11f, 0x1.2caac8p-15f, 0x1.8578d8p-20f,
       0x1.8578d8p-20f, 0x1.8578d8p-20f},
      {-0x1.ab3d48p-6f, -0x1.57a868p-8f, -0x1.4bc1c2p-10f, -0x1.0d3adep-13f, -0x1.5ee74ep-18f,
       -0x1.f3684ap-24f, -0x1.f3684ap-24f, -0x1.f3684ap-24f},
      {0x1.2a76a2p-7f, 0x1.ce5d12p-10f, 0x1.8231bep-12f, 0x1.dc70bp-16f, 0x1.91dfeep-21f, 0x1.3eedb2p-27f,
       0x1.3eedb2p-27f, 0x1.3eedb2p-27f},
      {-0x1.01f796p-9f, 0.0f, -0x1.bc0a44p-14f, -0x1.990156p-18f, -0x1.bc505p-24f, -0x1.94015p-31f,
       -0x1.94015p-31f, -0x1.94015p-31f},
      {0.0f, 0.0f, 0x1.d42cfcp-16f, 0x1.78d188p-20f, 0x1.ec72bcp-27f, 0x1.e7899cp-35f, 0x1.e7899cp-35f,
       0x1.e7899cp-35f},
      {0.0f, 0.0f, 0.0f, -0x1.2e43d4p-22f, -0x1.4cc77ap-29f, -0x1.318b34p-38f, -0x1.318b34p-38f,
       -0x1.318b34p-38f},
      {0.0f, 0.0f, 0.0f, 0.0f, 0x1.631cc6p-32f, 0x1.09e496p-41f, 0x1.09e496p-41f, 0x1.09e496p-41f},
      {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, -0x1.481adap-45f, -0x1.481adap-45f, -0x1.481adap-45f},
  };
  const vi mag = bits(x) & 0x7fffffff;
  // a = min(|x|, 14.5) (NaN -> 14.5: the math only sees finite lanes); xc = a with the sign of x.
  const vi big = simd::mask_greater(mag, bits_of(14.5f));
  const vi ac = simd::blend(big, vi{} + bits_of(14.5f), mag);
  const vf a = simd::bitcast<vf>(ac);
  const vi sign = bits(x) & bits_of(-0.0f);
  const vf xc = simd::bitcast<vf>(ac | sign);
  // a^2 = h + l exactly (Dekker, no FMA); exp(-a^2 / 2) = 2^n (1 + w).
  const vf ah = split_hi(a), al = a - ah;
  const vf h = a * a;
  const vf l = (((ah * ah - h) + ah * al) + ah * al) + al * al;
  const exp2n e = exp_fast(h * splat(-0.5f), l * splat(-0.5f));
  // The binade of a picks the polynomial; d = a - c exact.
  const vi idx = clamp0((ac >> 23) - 125) & 7;
  const vf d = a - simd::lookup8(kT[0], idx);
  vf t = simd::lookup8(kT[15], idx);
  for (int j = 14; j >= 6; --j) t = t * d + simd::lookup8(kT[j], idx);
  // G(a) = c0 + c0_lo + d k1 + d^2 t: d k1 + d^2 t = dt.hi + dt.lo + k1e with only d^2 t (small) rounded.
  const df k1d = two_prod(d, simd::lookup8(kT[5], idx));
  const df dt = two_sum(k1d.hi, d * (d * t));
  const vf k1e = k1d.lo + d * simd::lookup8(kT[4], idx);
  const vf ch = simd::lookup8(kT[1], idx), cl = simd::lookup8(kT[2], idx), c0 = ch + cl;
  // Exact products (Dekker): x c0 = p + pe (c0 = ch + cl pre-split), x dt = t2 + t2e, p w.hi = t1 + t1e.
  const vf xh = split_hi(xc), xl = xc - xh;
  const vf p = xc * c0;
  const vf pe = (((xh * ch - p) + xh * cl) + xl * ch) + xl * cl;
  const vf bh = split_hi(dt.hi), bl = dt.hi - bh;
  const vf t2 = xc * dt.hi;
  const vf t2e = (((xh * bh - t2) + xh * bl) + xl * bh) + xl * bl;
  const df w = fast_two_sum(e.w_hi, e.w_lo);  // |w.lo| <= ulp(w.hi) / 2
  const df t1 = two_prod(p, w.hi);
  // x G (1 + w) = (p + t1 + t2) + rest: the three large terms summed exactly (|t1| <= 0.42 |p|), the rest
  // (the product and sum errors, x (c0_lo + dt.lo + k1e), (t2 + pe) w.hi, (p + t2) w.lo) small enough that
  // its roundings stay far below an ulp of the result.
  const df u = fast_two_sum(p, t1.hi);
  const df v = two_sum(u.hi, t2);
  // The remaining terms: xs = x (c0_lo + dt.lo + k1e) and the product errors, all times (1 + w); the largest,
  // (t2 + ..) w.hi (<= 0.2 |p|), is added exactly to v.hi, so only tiny terms round before the final sum.
  const vf xs = xc * ((simd::lookup8(kT[3], idx) + dt.lo) + k1e);
  const vf small = (pe + t2e) + xs;
  const df vv = fast_two_sum(v.hi, (t2 + small) * w.hi);
  const df uu{vv.hi, (vv.lo + (v.lo + u.lo)) + ((t1.lo + small) + (p + t2) * w.lo)};
  // x < 0: 2^n (uu.hi + uu.lo) (keeping the sign of -0).
  const vf yneg = simd::bitcast<vf>(bits(scale_down(uu.hi + uu.lo, -e.n)) | sign);
  // x >= 0: x - 2^n (uu.hi + uu.lo), with x - 2^n uu.hi as an exact double-float.
  const vf sc = simd::bitcast<vf>(clamp0(127 + e.n) << 23);
  const df z = fast_two_sum(xc, -(uu.hi * sc));
  const vf ypos = z.hi + (z.lo - uu.lo * sc);
  // x > 14.5 (and +inf): x; x < -14.5 (and -inf): -0 from the clamped lanes (|x| Q(|x|) < 2^-152); NaN: x.
  const vi neg = bits(x) >> 31;
  return simd::blend(big & (~neg | simd::mask_greater(mag, 0x7f800000)), x, simd::blend(neg, yneg, ypos));
}

}  // namespace act

// GELU's body is long: one out-of-line copy per family instead of one per kernel that fuses it.
[[gnu::noinline]] inline simd::vf gelu_out_of_line(simd::vf v) noexcept {
  return act::gelu(v);
}

// Inlined into the kernels' loops: a call would pass the 16 lanes through the stack.
template <activation A>
[[gnu::always_inline]] inline simd::vf activate(simd::vf v) noexcept {
  if constexpr (A == activation::relu) {
    // v < 0 (so -0 and NaNs of either sign pass through), as integer masks (simd/simd.hpp).
    const simd::vi b = act::bits(v), mag = b & 0x7fffffff;
    return simd::blend((b >> 31) & simd::mask_greater(mag, 0) & simd::mask_less(mag, 0x7f800001), simd::vf{},
                       v);
  } else if constexpr (A == activation::silu) {
    return act::each_register(v, [](act::reg::f r) { return act::silu(r); });
  } else if constexpr (A == activation::gelu) {
    return gelu_out_of_line(v);
  } else {
    static_assert(A == activation::none, "activation not implemented");
    return v;
  }
}

}  // namespace
}  // namespace groupnorm::detail