// Storage conversions for f32 / f16 / bf16, vector (16 lanes) and scalar, bit-exact and identical on every
// ISA. f16 uses round-to-nearest-even and quiets NaNs keeping their payload, exactly as F16C's VCVTPS2PH /
// VCVTPH2PS; bf16 uses round-to-nearest-even in integer arithmetic (AVX512-BF16's VCVTNEPS2BF16 flushes
// denormals, so it would break the same-bits-on-every-path guarantee and is deliberately not used).
#pragma once

#include <cstdint>
#include <cstring>

#include "groupnorm/groupnorm.hpp"
#include "simd/simd.hpp"

namespace groupnorm::detail {
namespace {  // internal linkage per ISA translation unit, see simd/simd.hpp

namespace conv {
using namespace simd;

inline vf f16_to_f32(vu16 h16) noexcept {
  const vu h = widen(h16);
  const vu sign = (h & 0x8000u) << 16;
  const vu em = h & 0x7fffu;
  // Normal and subnormal halves: shift into a float's exponent/mantissa and rescale by 2^112 (exact).
  const vf scaled = bitcast<vf>(em << 13) * splat(0x1p112f);
  const vu inf_nan = (em << 13) | 0x7f800000u | (mask_greater(em, 0x7c00u) & 0x400000u);
  return bitcast<vf>(blend(mask_greater(em, 0x7bffu), inf_nan, bitcast<vu>(scaled)) | sign);
}

inline vu16 f32_to_f16(vf f) noexcept {
  vu u = bitcast<vu>(f);
  const vu sign = u & 0x80000000u;
  u ^= sign;
  // Overflow / inf / NaN.
  const vu nan_bits = 0x7e00u | ((u >> 13) & 0x3ffu);
  const vu big = blend(mask_greater(u, 0x7f800000u), nan_bits, splatu(0x7c00u));
  // Subnormal halves: let the FPU round by adding a magic denormal bias (RNE), as in F16C.
  const vu denorm_magic = splatu(((127u - 15u) + (23u - 10u) + 1u) << 23);
  const vu sub = bitcast<vu>(bitcast<vf>(u) + bitcast<vf>(denorm_magic)) - denorm_magic;
  // Normal halves: rebias and round to nearest even.
  const vu odd = (u >> 13) & 1u;
  const vu norm = (u + ((15u - 127u) << 23) + 0xfffu + odd) >> 13;
  const vu small = blend(mask_less(u, 113u << 23), sub, norm);
  const vu out = blend(mask_less(u, 143u << 23), small, big) | (sign >> 16);
  return narrow(out);
}

inline vf bf16_to_f32(vu16 h16) noexcept {
  return bitcast<vf>(widen(h16) << 16);
}

inline vu16 f32_to_bf16(vf f) noexcept {
  const vu u = bitcast<vu>(f);
  const vu rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const vu quiet = (u >> 16) | 0x40u;
  return narrow(blend(mask_greater(u & 0x7fffffffu, 0x7f800000u), quiet, rounded));
}
}  // namespace conv

// storage<T>: load / store 16 lanes or one element as float. The vector forms sit in every hot loop
// (GROUPNORM_HOT_INLINE).
template <class T>
struct storage;

template <>
struct storage<float> {
  GROUPNORM_HOT_INLINE static simd::vf load(const float* p) noexcept { return simd::load(p); }
  GROUPNORM_HOT_INLINE static void store(float* p, simd::vf v) noexcept { simd::store(p, v); }
  static float load1(const float* p) noexcept { return *p; }
  static void store1(float* p, float v) noexcept { *p = v; }
};

template <class Half, simd::vf (*ToF32)(simd::vu16), simd::vu16 (*FromF32)(simd::vf)>
struct storage16 {
  GROUPNORM_HOT_INLINE static simd::vf load(const Half* p) noexcept {
    return ToF32(simd::load16(reinterpret_cast<const std::uint16_t*>(p)));
  }
  GROUPNORM_HOT_INLINE static void store(Half* p, simd::vf v) noexcept {
    simd::store16(reinterpret_cast<std::uint16_t*>(p), FromF32(v));
  }
  // Scalar forms go through lane 0 of the vector forms so the bits are the same by construction.
  static float load1(const Half* p) noexcept {
    simd::vu16 v{};
    simd::set_lane(v, 0, p->bits);
    return ToF32(v)[0];
  }
  static void store1(Half* p, float f) noexcept {
    simd::vf v{};
    simd::set_lane(v, 0, f);
    p->bits = FromF32(v)[0];
  }
};

template <>
struct storage<f16> : storage16<f16, conv::f16_to_f32, conv::f32_to_f16> {};
template <>
struct storage<bf16> : storage16<bf16, conv::bf16_to_f32, conv::f32_to_bf16> {};

}  // namespace
}  // namespace groupnorm::detail
