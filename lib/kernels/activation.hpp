// Fused activations on 16-lane vectors, in plain IEEE float operations (no libm calls, no FMA contraction), so
// every ISA family gives the same bits. Internal linkage per ISA translation unit (see simd.hpp).
#pragma once

#include "groupnorm/groupnorm.hpp"
#include "kernels/simd.hpp"

namespace groupnorm::detail {
namespace {

template <activation A>
inline simd::vf activate(simd::vf v) noexcept {
  if constexpr (A == activation::relu) {
    return (v < 0.0f) ? simd::vf{} : v;  // NaN compares false and passes through
  } else {
    static_assert(A == activation::none, "activation not implemented");
    return v;
  }
}

}  // namespace
}  // namespace groupnorm::detail
