// The exact moments pass: a slice's moments in plain sequential double, for slices whose float lane sums
// cannot be trusted (lib/schedule/execute.cpp, finish_slice). Either layout, as rows of a strided range.
#pragma once

#include <cstddef>

#include "kernels/block_moments.hpp"
#include "kernels/source.hpp"

namespace groupnorm::detail {
namespace {  // internal linkage per ISA translation unit, see simd/simd.hpp

template <class T, bool Residual>
moments exact_moments(const void* x, const void* residual, std::size_t rows, std::size_t width,
                      std::size_t stride) noexcept {
  const source<T, Residual> s{static_cast<const T*>(x), static_cast<const T*>(residual)};
  return block_moments_double(
      rows * width, [&](std::size_t i) { return static_cast<double>(s.at(i / width * stride + i % width)); });
}

}  // namespace
}  // namespace groupnorm::detail
