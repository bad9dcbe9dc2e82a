// SIMD primitives: the fixed-width vector types every kernel family computes with, and their operations. A
// `vf` always has 16 float lanes (vi / vu: 16 int32 / uint32 lanes, vu16: 16 uint16 lanes), whatever the
// ISA, and every operation on them is element-wise, so the results are the same bits on every family.
// AVX-512: GCC/Clang vector extensions of 64 bytes, one zmm register each; narrower targets: simd/wide.hpp.
// Lanes are read with v[j] and written with set_lane(v, j, x) (a vector element is not an lvalue of the
// struct). Included only from kernel translation units. Everything is in an anonymous namespace: each ISA
// translation unit gets its own copy compiled with its own target flags, so the linker can never merge an
// AVX-512 body into the scalar path (an ODR trap of per-file target flags).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "simd/wide.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
// The neon family (kernels_neon.cpp, GROUPNORM_SIMD_NEON set in lib/CMakeLists.txt) writes its primitives
// with NEON intrinsics; the scalar family stays portable C++ on every architecture.
#if defined(GROUPNORM_SIMD_NEON)
#include <arm_neon.h>
#endif

// Forces inlining of the helpers every hot loop calls per vector (storage loads and stores, the element
// source, the moment accumulator). GCC inlines them on x86 by itself, and forcing it there only perturbs its
// other inlining choices; on aarch64 it leaves them out of line, a call and register moves per vector.
#if defined(__aarch64__)
#define GROUPNORM_HOT_INLINE __attribute__((always_inline))
#else
#define GROUPNORM_HOT_INLINE
#endif

namespace groupnorm::detail {
namespace {
namespace simd {

#if defined(__AVX512F__)

using vf = float __attribute__((vector_size(64)));
using vi = std::int32_t __attribute__((vector_size(64)));
using vu = std::uint32_t __attribute__((vector_size(64)));
using vu16 = std::uint16_t __attribute__((vector_size(32)));

template <class V, class E>
inline void set_lane(V& v, int j, E x) noexcept {
  v[j] = x;
}
[[gnu::always_inline]] inline vf splat(float v) noexcept {
  return vf{v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v};
}
[[gnu::always_inline]] inline vu widen(vu16 h) noexcept {
  return __builtin_convertvector(h, vu);
}
[[gnu::always_inline]] inline vu16 narrow(vu u) noexcept {
  return __builtin_convertvector(u, vu16);
}

#else

#if defined(__AVX__)
inline constexpr int kPieceBytes = 32;
#else
inline constexpr int kPieceBytes = 16;
#endif

using vf = wide<float, float __attribute__((vector_size(kPieceBytes)))>;
using vi = wide<std::int32_t, std::int32_t __attribute__((vector_size(kPieceBytes)))>;
using vu = wide<std::uint32_t, std::uint32_t __attribute__((vector_size(kPieceBytes)))>;
using vu16 = wide<std::uint16_t, std::uint16_t __attribute__((vector_size(kPieceBytes)))>;

[[gnu::always_inline]] inline vf splat(float v) noexcept {
  // One broadcast; GCC turns the lane loop into a chain of inserts where v comes from memory.
#if defined(__AVX__)
  const vf::piece q = _mm256_set1_ps(v);
#elif defined(__SSE2__)
  const vf::piece q = _mm_set1_ps(v);
#else
  vf::piece q;
  for (int j = 0; j < vf::kPieceLanes; ++j) q[j] = v;
#endif
  vf r;
#pragma GCC unroll 4
  for (int k = 0; k < vf::kPieces; ++k) r.p[k] = q;
  return r;
}

// uint16 -> uint32 lanes and back (truncating), with register shuffles and the native conversions.
using u16x4 = std::uint16_t __attribute__((vector_size(8)));
using u16x8 = std::uint16_t __attribute__((vector_size(16)));
#if defined(__AVX__)
[[gnu::always_inline]] inline vu widen(vu16 h) noexcept {
  vu r;
  r.p[0] =
      __builtin_convertvector(__builtin_shufflevector(h.p[0], h.p[0], 0, 1, 2, 3, 4, 5, 6, 7), vu::piece);
  r.p[1] = __builtin_convertvector(__builtin_shufflevector(h.p[0], h.p[0], 8, 9, 10, 11, 12, 13, 14, 15),
                                   vu::piece);
  return r;
}
[[gnu::always_inline]] inline vu16 narrow(vu u) noexcept {
  const u16x8 lo = __builtin_convertvector(u.p[0], u16x8), hi = __builtin_convertvector(u.p[1], u16x8);
  vu16 r;
  r.p[0] = __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  return r;
}
#elif defined(GROUPNORM_SIMD_NEON)
// UXTL / UXTL2 and XTN / XTN2: one instruction per 4 lanes.
[[gnu::always_inline]] inline vu widen(vu16 h) noexcept {
  vu r;
  for (int k = 0; k < 2; ++k) {
    const uint16x8_t q = bitcast<uint16x8_t>(h.p[k]);
    r.p[2 * k] = bitcast<vu::piece>(vmovl_u16(vget_low_u16(q)));
    r.p[2 * k + 1] = bitcast<vu::piece>(vmovl_high_u16(q));
  }
  return r;
}
[[gnu::always_inline]] inline vu16 narrow(vu u) noexcept {
  vu16 r;
  for (int k = 0; k < 2; ++k)
    r.p[k] = bitcast<vu16::piece>(
        vmovn_high_u32(vmovn_u32(bitcast<uint32x4_t>(u.p[2 * k])), bitcast<uint32x4_t>(u.p[2 * k + 1])));
  return r;
}
#else
[[gnu::always_inline]] inline vu widen(vu16 h) noexcept {
  vu r;
  r.p[0] = __builtin_convertvector(__builtin_shufflevector(h.p[0], h.p[0], 0, 1, 2, 3), vu::piece);
  r.p[1] = __builtin_convertvector(__builtin_shufflevector(h.p[0], h.p[0], 4, 5, 6, 7), vu::piece);
  r.p[2] = __builtin_convertvector(__builtin_shufflevector(h.p[1], h.p[1], 0, 1, 2, 3), vu::piece);
  r.p[3] = __builtin_convertvector(__builtin_shufflevector(h.p[1], h.p[1], 4, 5, 6, 7), vu::piece);
  return r;
}
[[gnu::always_inline]] inline vu16 narrow(vu u) noexcept {
  u16x4 q[4];
  for (int k = 0; k < 4; ++k) q[k] = __builtin_convertvector(u.p[k], u16x4);
  vu16 r;
  r.p[0] = __builtin_shufflevector(q[0], q[1], 0, 1, 2, 3, 4, 5, 6, 7);
  r.p[1] = __builtin_shufflevector(q[2], q[3], 0, 1, 2, 3, 4, 5, 6, 7);
  return r;
}
#endif

#endif

[[gnu::always_inline]] inline vu splatu(std::uint32_t v) noexcept {
  return bitcast<vu>(splat(bitcast<float>(v)));
}

// Loads and stores piece by piece on the struct types, so each is one native unaligned move into or out of
// a register (a 64-byte memcpy of the struct was expanded into 16-byte moves through the stack, and the
// reload of a 32-byte piece from two 16-byte stores stalls on store forwarding).
template <class V, class E>
[[gnu::always_inline]] inline V load_as(const E* p) noexcept {
  V v;
  if constexpr (is_wide<V>) {
#pragma GCC unroll 4
    for (int k = 0; k < V::kPieces; ++k) std::memcpy(&v.p[k], p + k * V::kPieceLanes, sizeof v.p[k]);
  } else {
    std::memcpy(&v, p, sizeof v);
  }
  return v;
}
template <class V, class E>
[[gnu::always_inline]] inline void store_as(E* p, const V& v) noexcept {
  if constexpr (is_wide<V>) {
#pragma GCC unroll 4
    for (int k = 0; k < V::kPieces; ++k) std::memcpy(p + k * V::kPieceLanes, &v.p[k], sizeof v.p[k]);
  } else {
    std::memcpy(p, &v, sizeof v);
  }
}

[[gnu::always_inline]] inline vf load(const float* p) noexcept {
  return load_as<vf>(p);
}
[[gnu::always_inline]] inline void store(float* p, vf v) noexcept {
  store_as(p, v);
}

// a * b + c rounded once (fused multiply-add), lane by lane. One instruction on the FMA-capable families
// (AVX2 kernels require FMA, AVX-512 has it, NEON's FMLA is part of every aarch64 CPU); the scalar family
// calls std::fma lane by lane (the C library's correctly rounded fmaf on baseline x86-64), so every family
// computes the same bits while the vector ones do one FP operation where a multiply and an add would be two.
// The kernels compile with -ffp-contract=off: a product and a sum fuse only here and in the scalar tails'
// std::fma, which rounds exactly like one lane of this.
[[gnu::always_inline]] inline vf fma(vf a, vf b, vf c) noexcept {
#if defined(__AVX512F__)
  return bitcast<vf>(_mm512_fmadd_ps(bitcast<__m512>(a), bitcast<__m512>(b), bitcast<__m512>(c)));
#elif defined(__FMA__)
  vf r;
#pragma GCC unroll 4
  for (int k = 0; k < vf::kPieces; ++k)
    r.p[k] = bitcast<vf::piece>(
        _mm256_fmadd_ps(bitcast<__m256>(a.p[k]), bitcast<__m256>(b.p[k]), bitcast<__m256>(c.p[k])));
  return r;
#elif defined(GROUPNORM_SIMD_NEON)
  vf r;
#pragma GCC unroll 4
  for (int k = 0; k < vf::kPieces; ++k)
    r.p[k] = bitcast<vf::piece>(
        vfmaq_f32(bitcast<float32x4_t>(c.p[k]), bitcast<float32x4_t>(a.p[k]), bitcast<float32x4_t>(b.p[k])));
  return r;
#else
  vf r;
  for (int j = 0; j < kWidth; ++j) set_lane(r, j, std::fma(a[j], b[j], c[j]));
  return r;
#endif
}

// Lane masks and blends in integer arithmetic only: GCC 12 scalarizes vector comparisons and ?: on 16-lane
// vectors when the target's registers are narrower (SSE2, AVX2), with a branch per lane; wrapping integer
// subtraction, arithmetic shifts and bitwise blends stay vector operations everywhere. V is vu or vi. For
// lanes a and c in [0, 2^31) (such as the bits of non-negative floats): all-ones where a < c (mask_less) or
// a > c (mask_greater), else 0.
template <class V>
[[gnu::always_inline]] inline V mask_less(V a, std::uint32_t c) noexcept {
  return bitcast<V>(bitcast<vi>(bitcast<vu>(a) - splatu(c)) >> 31);
}
template <class V>
[[gnu::always_inline]] inline V mask_greater(V a, std::uint32_t c) noexcept {
  return bitcast<V>(bitcast<vi>(splatu(c) - bitcast<vu>(a)) >> 31);
}
// a where m is set, b elsewhere.
template <class V>
[[gnu::always_inline]] inline V blend(V m, V a, V b) noexcept {
  return b ^ ((a ^ b) & m);
}
[[gnu::always_inline]] inline vf blend(vi m, vf a, vf b) noexcept {
  return bitcast<vf>(blend(m, bitcast<vi>(a), bitcast<vi>(b)));
}

// Non-temporal store of 16 floats to a 64-byte aligned address (plain store where the ISA has none). The
// value stored is the same; only the cache policy differs. Callers issue stream_fence() before other threads
// read.
inline void stream(float* p, vf v) noexcept {
#if defined(__AVX512F__)
  _mm512_stream_ps(p, bitcast<__m512>(v));
#elif defined(__AVX__)
  _mm256_stream_ps(p, bitcast<__m256>(v.p[0]));
  _mm256_stream_ps(p + 8, bitcast<__m256>(v.p[1]));
#elif defined(__SSE2__)
#pragma GCC unroll 4
  for (int k = 0; k < vf::kPieces; ++k) _mm_stream_ps(p + 4 * k, bitcast<__m128>(v.p[k]));
#else
  store(p, v);
#endif
}

inline void stream_fence() noexcept {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

[[gnu::always_inline]] inline vu16 load16(const std::uint16_t* p) noexcept {
  return load_as<vu16>(p);
}
[[gnu::always_inline]] inline void store16(std::uint16_t* p, vu16 v) noexcept {
  store_as(p, v);
}

// Per-lane table lookup t[i] for i in [0, 8): exact data movement (a permute where the ISA has one), so every
// ISA gives the same bits.
[[gnu::always_inline]] inline vf lookup8(const float (&t)[8], vi i) noexcept {
#if defined(__AVX512F__)
  // Masked forms: GCC 12's unmasked ones start from an undefined register (-Wuninitialized).
  const __m512 tab = _mm512_maskz_loadu_ps(0x00ff, t);
  return bitcast<vf>(_mm512_mask_permutexvar_ps(tab, 0xffff, bitcast<__m512i>(i), tab));
#elif defined(__AVX2__)
  const __m256 tab = _mm256_loadu_ps(t);
  vf out;
  for (int k = 0; k < vf::kPieces; ++k)
    out.p[k] = bitcast<vf::piece>(_mm256_permutevar8x32_ps(tab, bitcast<__m256i>(i.p[k])));
  return out;
#elif defined(GROUPNORM_SIMD_NEON)
  // TBL on the 32-byte table: lane index i (low 3 bits, as the permutes use) selects bytes 4i .. 4i + 3.
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(t);
  const uint8x16x2_t tab = {{vld1q_u8(bytes), vld1q_u8(bytes + 16)}};
  vf out;
#pragma GCC unroll 4
  for (int k = 0; k < vf::kPieces; ++k) {
    const uint32x4_t lane = vandq_u32(bitcast<uint32x4_t>(i.p[k]), vdupq_n_u32(7));
    const uint32x4_t sel = vmlaq_n_u32(vdupq_n_u32(0x03020100u), lane, 0x04040404u);
    out.p[k] = bitcast<vf::piece>(vqtbl2q_u8(tab, vreinterpretq_u8_u32(sel)));
  }
  return out;
#else
  float out[kWidth];
  for (int j = 0; j < kWidth; ++j) out[j] = t[i[j] & 7];
  return load(out);
#endif
}

// Horizontal sum in a fixed tree (lane j += lane j + w for w = 8, 4, 2, 1), the same on every ISA.
[[gnu::always_inline]] inline float reduce(vf v) noexcept {
#if defined(__AVX512F__)
  // Whole-vector shuffles: four dependent adds, not fifteen; lanes above w are don't-care after step w.
  v += __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15);
  v += __builtin_shufflevector(v, v, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7);
  v += __builtin_shufflevector(v, v, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
  v += __builtin_shufflevector(v, v, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1);
  return v[0];
#elif defined(GROUPNORM_SIMD_NEON)
  // w = 8 and 4 add whole registers (lanes 8..11 onto 0..3 and 12..15 onto 4..7, then 4..7 onto 0..3); w = 2
  // adds the high half onto the low one, w = 1 is FADDP (lane 0 + lane 1).
  const float32x4_t p0 = bitcast<float32x4_t>(v.p[0]), p1 = bitcast<float32x4_t>(v.p[1]);
  const float32x4_t p2 = bitcast<float32x4_t>(v.p[2]), p3 = bitcast<float32x4_t>(v.p[3]);
  const float32x4_t q = vaddq_f32(vaddq_f32(p0, p2), vaddq_f32(p1, p3));
  return vpadds_f32(vadd_f32(vget_low_f32(q), vget_high_f32(q)));
#elif defined(__SSE2__)
  // The same tree on the native pieces (the generic loop below stays in memory, dozens of dependent loads and
  // stores per call): w = 8 adds the upper pieces onto the lower ones, w = 4 what is left of 4..7 onto 0..3,
  // then the two shuffles. Every add keeps t[j] as its first operand, as the loop does.
  using v4 = float __attribute__((vector_size(16)));
#if defined(__AVX__)
  const vf::piece q = v.p[0] + v.p[1];
  v4 h = __builtin_shufflevector(q, q, 0, 1, 2, 3) + __builtin_shufflevector(q, q, 4, 5, 6, 7);
#else
  v4 h = (v.p[0] + v.p[2]) + (v.p[1] + v.p[3]);
#endif
  h += __builtin_shufflevector(h, h, 2, 3, 2, 3);
  h += __builtin_shufflevector(h, h, 1, 1, 1, 1);
  return h[0];
#else
  float t[kWidth];
  std::memcpy(t, &v, sizeof t);
  for (int w = kWidth / 2; w >= 1; w /= 2)
    for (int j = 0; j < w; ++j) t[j] += t[j + w];
  return t[0];
#endif
}

}  // namespace simd
}  // namespace
}  // namespace groupnorm::detail
