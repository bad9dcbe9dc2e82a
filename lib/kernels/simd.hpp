// Fixed-width vector types (GCC/Clang vector extensions). A `vf` always has 16 float lanes; the compiler maps it to
// one zmm (AVX-512), two ymm (AVX2) or four xmm / scalar code, but the element-wise results are the same on all.
// Included only from kernel translation units. Everything is in an anonymous namespace: each ISA translation unit
// gets its own copy compiled with its own target flags, so the linker can never merge an AVX-512 body into the
// scalar path (an ODR trap of per-file target flags).
#pragma once

#include <cstdint>
#include <cstring>

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

inline vf splat(float v) noexcept { return vf{} + v; }
inline vu splatu(std::uint32_t v) noexcept { return vu{} + v; }

inline vf load(const float* p) noexcept {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, vf v) noexcept { std::memcpy(p, &v, sizeof v); }

inline vu16 load16(const std::uint16_t* p) noexcept {
  vu16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store16(std::uint16_t* p, vu16 v) noexcept { std::memcpy(p, &v, sizeof v); }

// Horizontal sum in a fixed tree (lane j += lane j + w for w = 8, 4, 2, 1), the same on every ISA.
inline float reduce(vf v) noexcept {
  float lanes[kWidth];
  std::memcpy(lanes, &v, sizeof lanes);
  for (int w = kWidth / 2; w >= 1; w /= 2)
    for (int j = 0; j < w; ++j) lanes[j] += lanes[j + w];
  return lanes[0];
}

}  // namespace simd
}  // namespace
}  // namespace groupnorm::detail
