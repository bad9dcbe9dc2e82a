// Fixed-width vector types (GCC/Clang vector extensions). A `vf` always has 16 float lanes; the compiler maps
// it to one zmm (AVX-512), two ymm (AVX2) or four xmm / scalar code, but the element-wise results are the
// same on all. Included only from kernel translation units. Everything is in an anonymous namespace: each ISA
// translation unit gets its own copy compiled with its own target flags, so the linker can never merge an
// AVX-512 body into the scalar path (an ODR trap of per-file target flags).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace groupnorm::detail {
namespace {
namespace simd {

inline constexpr int kWidth = 16;
using vf = float __attribute__((vector_size(64)));
using vi = std::int32_t __attribute__((vector_size(64)));
using vu = std::uint32_t __attribute__((vector_size(64)));
using vu16 = std::uint16_t __attribute__((vector_size(32)));

template <class To, class From>
inline To bitcast(From v) noexcept {
  static_assert(sizeof(To) == sizeof(From));
  To out;
  std::memcpy(&out, &v, sizeof out);
  return out;
}

// All lanes = v. (Not vf{} + v: adding +0 is not an identity for -0, so the compiler must keep that add.)
inline vf splat(float v) noexcept {
  return vf{v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v};
}
inline vu splatu(std::uint32_t v) noexcept {
  return vu{} + v;
}

inline vf load(const float* p) noexcept {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, vf v) noexcept {
  std::memcpy(p, &v, sizeof v);
}

// a * b + c rounded once (fused multiply-add), lane by lane. One instruction on the FMA-capable families
// (AVX2 kernels require FMA, AVX-512 has it); the baseline family calls the C library's correctly rounded
// fmaf, so every family computes the same bits while the vector ones do one FP operation where a multiply
// and an add would be two. The kernels compile with -ffp-contract=off: a product and a sum fuse only here and
// in the scalar tails' std::fma, which rounds exactly like one lane of this.
inline vf fma(vf a, vf b, vf c) noexcept {
#if defined(__AVX512F__)
  return bitcast<vf>(_mm512_fmadd_ps(bitcast<__m512>(a), bitcast<__m512>(b), bitcast<__m512>(c)));
#elif defined(__FMA__)
  const __m256 lo = _mm256_fmadd_ps(bitcast<__m256>(__builtin_shufflevector(a, a, 0, 1, 2, 3, 4, 5, 6, 7)),
                                    bitcast<__m256>(__builtin_shufflevector(b, b, 0, 1, 2, 3, 4, 5, 6, 7)),
                                    bitcast<__m256>(__builtin_shufflevector(c, c, 0, 1, 2, 3, 4, 5, 6, 7)));
  const __m256 hi =
      _mm256_fmadd_ps(bitcast<__m256>(__builtin_shufflevector(a, a, 8, 9, 10, 11, 12, 13, 14, 15)),
                      bitcast<__m256>(__builtin_shufflevector(b, b, 8, 9, 10, 11, 12, 13, 14, 15)),
                      bitcast<__m256>(__builtin_shufflevector(c, c, 8, 9, 10, 11, 12, 13, 14, 15)));
  using half = float __attribute__((vector_size(32)));
  const half l = bitcast<half>(lo), h = bitcast<half>(hi);
  return __builtin_shufflevector(l, h, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
#else
  vf r;
  for (int j = 0; j < kWidth; ++j) r[j] = std::fma(a[j], b[j], c[j]);
  return r;
#endif
}

// Lane masks and blends in integer arithmetic only: GCC 12 scalarizes vector comparisons and ?: on 16-lane
// vectors when the target's registers are narrower (SSE2, AVX2), with a branch per lane. For a and c in [0,
// 2^31): all-ones where a < c (mask_less) or a > c (mask_greater), else 0.
inline vu mask_less(vu a, std::uint32_t c) noexcept {
  return bitcast<vu>(bitcast<vi>(a - splatu(c)) >> 31);
}
inline vu mask_greater(vu a, std::uint32_t c) noexcept {
  return bitcast<vu>(bitcast<vi>(splatu(c) - a) >> 31);
}
// a where m is set, b elsewhere.
inline vu blend(vu m, vu a, vu b) noexcept {
  return b ^ ((a ^ b) & m);
}

// Non-temporal store of 16 floats to a 64-byte aligned address (plain store where the ISA has none). The
// value stored is the same; only the cache policy differs. Callers issue stream_fence() before other threads
// read.
inline void stream(float* p, vf v) noexcept {
#if defined(__AVX512F__)
  _mm512_stream_ps(p, bitcast<__m512>(v));
#elif defined(__AVX__)
  _mm256_stream_ps(p, bitcast<__m256>(__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7)));
  _mm256_stream_ps(p + 8, bitcast<__m256>(__builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15)));
#elif defined(__SSE2__)
  for (int q = 0; q < 4; ++q) {
    const float* lanes = reinterpret_cast<const float*>(&v) + 4 * q;
    _mm_stream_ps(p + 4 * q, _mm_loadu_ps(lanes));
  }
#else
  store(p, v);
#endif
}

inline void stream_fence() noexcept {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

inline vu16 load16(const std::uint16_t* p) noexcept {
  vu16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store16(std::uint16_t* p, vu16 v) noexcept {
  std::memcpy(p, &v, sizeof v);
}

// Horizontal sum in a fixed tree (lane j += lane j + w for w = 8, 4, 2, 1), the same on every ISA. Written
// with whole-vector shuffles so it costs four dependent adds, not fifteen; lanes above w are don't-care after
// step w.
inline float reduce(vf v) noexcept {
  v += __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15);
  v += __builtin_shufflevector(v, v, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7);
  v += __builtin_shufflevector(v, v, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
  v += __builtin_shufflevector(v, v, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1);
  return v[0];
}

}  // namespace simd
}  // namespace
}  // namespace groupnorm::detail
