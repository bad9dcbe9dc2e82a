// IEEE binary16 and bfloat16 <-> float for the tools and tests: scalar, exact, and written independently of
// the library's vector converters (lib/simd/convert.hpp), so tests can check those against it.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

namespace gn_half {

// Exact: every binary16 value is a float. NaN keeps its sign and payload.
inline float f16_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu,
                      mant = h & 0x3ffu;
  if (exp == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
  if (exp != 0) return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
  const float v = std::ldexp(static_cast<float>(mant), -24);  // subnormal: mant * 2^-24, exact
  return sign ? -v : v;
}

// Round to nearest even; overflow -> Inf; NaN -> quiet NaN with the sign kept.
inline std::uint16_t float_to_f16(float f) {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
  const std::uint16_t sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
  const float a = std::fabs(f);
  if (std::isnan(f)) return static_cast<std::uint16_t>(sign | 0x7e00u);
  if (a >= 65520.0f) return static_cast<std::uint16_t>(sign | 0x7c00u);  // rounds to Inf (65504 + half ulp)
  // Scale so that the half's unit in the last place becomes 1, round to integer (nearest even), rebuild.
  int e = 0;
  std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
  // A half normal with exponent E has ulp 2^(E - 10) where E = e - 1; subnormals have ulp 2^-24.
  const int ulp_exp = std::max(e - 1, -14) - 10;
  const double q =
      std::nearbyint(std::ldexp(static_cast<double>(a), -ulp_exp));  // FE_TONEAREST: ties to even
  const double v = std::ldexp(q, ulp_exp);
  if (v == 0.0) return sign;
  int ve = 0;
  std::frexp(v, &ve);
  const int E = ve - 1;
  if (E < -14) return static_cast<std::uint16_t>(sign | static_cast<std::uint16_t>(q));  // subnormal
  const std::uint32_t mant = static_cast<std::uint32_t>(std::ldexp(v, -E) * 1024.0) - 1024u;
  return static_cast<std::uint16_t>(sign | static_cast<std::uint32_t>(E + 15) << 10 | mant);
}

inline float bf16_to_float(std::uint16_t b) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}

// Round to nearest even on the dropped 16 bits; NaN stays a quiet NaN.
inline std::uint16_t float_to_bf16(float f) {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
  if (std::isnan(f)) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
  const std::uint32_t lower = u & 0xffffu, upper = u >> 16;
  const bool round_up = lower > 0x8000u || (lower == 0x8000u && (upper & 1u));
  return static_cast<std::uint16_t>(upper + (round_up ? 1u : 0u));
}

}  // namespace gn_half
