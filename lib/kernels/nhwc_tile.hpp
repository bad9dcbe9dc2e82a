// NHWC lane layout shared by the moments and apply passes: channel sub-tiles, group segments, lane sums.
//
// A sample is `spatial` rows of C contiguous channels; a group is a strided set of columns. Nothing is
// transposed: kernels vectorize across the channels of a row. Each float lane belongs to one channel for the
// whole call (a fixed lane assignment that depends on the shape only), so per-lane sums are the same
// element-wise IEEE operations on every ISA. Lanes are reduced to their group in a fixed (rep, channel) order
// in double.
#pragma once

#include <algorithm>
#include <cstddef>
#include <type_traits>

#include "kernels/kernels.hpp"

namespace groupnorm::detail {
namespace {  // internal linkage per ISA translation unit, see simd/simd.hpp

// Lane layout of one call's channel sub-tile [a, b): `reps` copies of the `width` channels, lane
// rep * width + (c - a) holding channel c. Rows of the sub-tile are read with `stride` elements between them.
struct nhwc_tile {
  std::size_t a, b;    // channel range
  std::size_t width;   // b - a
  std::size_t lanes;   // reps * width: lanes per (virtual) row
  std::size_t reps;    // > 1 only for packed rows
  std::size_t stride;  // elements between consecutive (virtual) rows
  bool packed;         // whole rows packed contiguously into virtual rows of `lanes` elements
};

// Calls f(tile) for the sub-tiles covering groups [g0, g1): all of them when they fit in kNhwcTile channels,
// else runs of whole groups, else (a group wider than kNhwcTile) parts of one group of kNhwcTile channels.
template <class F>
void nhwc_for_each_tile(const nhwc_geometry& geo, std::size_t g0, std::size_t g1, F&& f) {
  const std::size_t cpg = geo.cpg;
  auto make = [&](std::size_t a, std::size_t b) {
    nhwc_tile t{a, b, b - a, b - a, 1, geo.channels, false};
    if (geo.lanes != 0) {  // packed: the plan guarantees a == 0, b == C, lanes = lcm(C, 16) <= kNhwcTile
      t.packed = true;
      t.lanes = geo.lanes;
      t.reps = geo.lanes / geo.channels;
      t.stride = geo.lanes;
    }
    return t;
  };
  const std::size_t c0 = g0 * cpg, c1 = g1 * cpg;
  if (c1 - c0 <= kNhwcTile) {
    f(make(c0, c1));
  } else if (cpg <= kNhwcTile) {
    const std::size_t step = kNhwcTile / cpg * cpg;
    for (std::size_t a = c0; a < c1; a += step) f(make(a, std::min(c1, a + step)));
  } else {
    for (std::size_t g = g0; g < g1; ++g)
      for (std::size_t a = g * cpg; a < (g + 1) * cpg; a += kNhwcTile)
        f(make(a, std::min((g + 1) * cpg, a + kNhwcTile)));
  }
}

// Calls f(std::integral_constant<std::size_t, n>{}) for a strip width n in [1, 4] (nothing for 0), so a
// run-time width picks a kernel whose accumulators are compile-time sized.
template <class F>
inline void with_strip_width(std::size_t n, F&& f) {
  switch (n) {
    case 4:
      return f(std::integral_constant<std::size_t, 4>{});
    case 3:
      return f(std::integral_constant<std::size_t, 3>{});
    case 2:
      return f(std::integral_constant<std::size_t, 2>{});
    case 1:
      return f(std::integral_constant<std::size_t, 1>{});
    default:
      return;
  }
}

// Calls f(g, lo, hi) for each group segment [lo, hi) (absolute channels) of tile t, in channel order.
// One division per call, not per segment: the loop runs three times per block, and a divide per segment
// would put a dependent chain through lo on every block.
template <class F>
inline void nhwc_segments(const nhwc_tile& t, std::size_t cpg, F&& f) {
  for (std::size_t lo = t.a, g = t.a / cpg; lo < t.b; ++g) {
    const std::size_t hi = std::min(t.b, (g + 1) * cpg);
    f(g, lo, hi);
    lo = hi;
  }
}

// Sum of a segment's lanes in double: the j-th lane in (rep, channel) order goes to accumulator j % 4, and
// the four are added as (a0 + a1) + (a2 + a3). A fixed order (so fixed bits) with four independent latency
// chains instead of one: these sums run once per block and segment, and a serial chain over 40 channels
// cost as much as the block's whole deviation pass on cache-resident UNet shapes.
inline double nhwc_lane_sum(const float* acc, const nhwc_tile& t, std::size_t lo, std::size_t hi) noexcept {
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0;  // named, not an array: GCC kept an array on the stack
  auto add = [&](std::size_t j, float v) {
    switch (j % 4) {
      case 0:
        a0 += v;
        break;
      case 1:
        a1 += v;
        break;
      case 2:
        a2 += v;
        break;
      default:
        a3 += v;
        break;
    }
  };
  const std::size_t n = hi - lo;
  std::size_t j = 0;
  for (std::size_t p = 0; p < t.reps; ++p) {
    const float* v = acc + p * t.width + (lo - t.a);
    std::size_t i = 0;
    for (; i < n && j % 4 != 0; ++i, ++j) add(j, v[i]);
    for (; i + 4 <= n; i += 4, j += 4) {
      a0 += v[i];
      a1 += v[i + 1];
      a2 += v[i + 2];
      a3 += v[i + 3];
    }
    for (; i < n; ++i, ++j) add(j, v[i]);
  }
  return (a0 + a1) + (a2 + a3);
}

inline void nhwc_fill(float* lanes, const nhwc_tile& t, std::size_t lo, std::size_t hi, float v) noexcept {
  for (std::size_t p = 0; p < t.reps; ++p)
    std::fill(lanes + p * t.width + (lo - t.a), lanes + p * t.width + (hi - t.a), v);
}
}  // namespace
}  // namespace groupnorm::detail
