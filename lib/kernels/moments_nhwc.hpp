// NHWC moments pass: per-lane deviation sums over blocks of rows, reduced to groups in a fixed order.
//
// Moments of one block of `block_rows` rows and one group use the same corrected formula as the NCHW
// block_moments_lockstep: a center sampled from 16 of the block's group elements; one pass summing d = x -
// center and d * d (repeated around the refined center c + E / n when the sample missed the mean by more than
// std / sqrt(3)); the block's group moments are {n, center + E / n, Q - E^2 / n}. Blocks are merged into the
// group with Chan's formula in row order.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "kernels/block_moments.hpp"
#include "kernels/nhwc_tile.hpp"
#include "kernels/source.hpp"

namespace groupnorm::detail {
namespace {  // internal linkage per ISA translation unit, see simd/simd.hpp

// acc[l] = sum of `rows` (virtual) rows `stride` elements apart, starting at `at`, in row order.
template <class Src>
inline void nhwc_sample(const Src& s, const nhwc_tile& t, std::size_t at, std::size_t rows,
                        std::size_t stride, float* acc) noexcept {
  const std::size_t vecs = t.lanes / simd::kWidth;
  for (std::size_t v = 0; v < vecs; ++v) {
    vf a{};
    for (std::size_t r = 0; r < rows; ++r) a += s.vec(at + r * stride + v * simd::kWidth);
    simd::store(acc + v * simd::kWidth, a);
  }
  for (std::size_t j = vecs * simd::kWidth; j < t.lanes; ++j) {
    float a = 0;
    for (std::size_t r = 0; r < rows; ++r) a += s.at(at + r * stride + j);
    acc[j] = a;
  }
}

// The deviation pass over the (virtual) rows of a block: d = v - center[l]; e[l] += d; q[l] = fma(d, d,
// q[l]). `rows` full rows of t.lanes lanes start at `at`; (in nhwc_pass) `rem` (< t.lanes, packed only)
// trailing elements go to lanes [0, rem). Strips of up to 4 vectors keep their accumulators in registers
// across rows; every lane still adds its rows in row order, so the bits are those of the plain row loop
// whatever the strip width (and the strips are the same on every ISA anyway).
template <std::size_t V, class Src>
inline void nhwc_dev_strip(const Src& s, std::size_t at, std::size_t rows, std::size_t stride,
                           const float* center, float* e, float* q) noexcept {
  vf ea[V], qa[V], c[V];
#pragma GCC unroll 4
  for (std::size_t v = 0; v < V; ++v) {
    ea[v] = simd::load(e + v * simd::kWidth);
    qa[v] = simd::load(q + v * simd::kWidth);
    c[v] = simd::load(center + v * simd::kWidth);
  }
  for (std::size_t r = 0; r < rows; ++r) {
#pragma GCC unroll 4
    for (std::size_t v = 0; v < V; ++v) {
      const vf d = s.vec(at + r * stride + v * simd::kWidth) - c[v];
      ea[v] += d;
      qa[v] = simd::fma(d, d, qa[v]);
    }
  }
#pragma GCC unroll 4
  for (std::size_t v = 0; v < V; ++v) {
    simd::store(e + v * simd::kWidth, ea[v]);
    simd::store(q + v * simd::kWidth, qa[v]);
  }
}

template <class Src>
inline void nhwc_pass(const Src& s, const nhwc_tile& t, std::size_t base, std::size_t rows, std::size_t rem,
                      const float* center, float* e, float* q) noexcept {
  constexpr std::size_t W = simd::kWidth;
  const std::size_t vecs = t.lanes / W;
  std::size_t v = 0;
  for (; v + 4 <= vecs; v += 4)
    nhwc_dev_strip<4>(s, base + v * W, rows, t.stride, center + v * W, e + v * W, q + v * W);
  // The last 1-3 vectors as one strip: strips of one vector each would run their latency chains (one add per
  // row) one after the other, which made narrow rows (C = 16, 32) latency-bound.
  with_strip_width(vecs - v, [&](auto width) {
    nhwc_dev_strip<width()>(s, base + v * W, rows, t.stride, center + v * W, e + v * W, q + v * W);
  });
  auto one = [&](std::size_t l, float x) {
    const float d = x - center[l];
    e[l] += d;
    q[l] = std::fma(d, d, q[l]);
  };
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = vecs * W; j < t.lanes; ++j) one(j, s.at(base + r * t.stride + j));
  const std::size_t row = base + rows * t.stride;
  for (std::size_t j = 0; j < rem; ++j) one(j, s.at(row + j));
}

template <class T, bool Residual>
void nhwc_moments(const void* xv, const void* rv, std::size_t rows, std::size_t g0, std::size_t g1,
                  const nhwc_geometry& geo, moments* out) noexcept {
  const source<T, Residual> s{static_cast<const T*>(xv), static_cast<const T*>(rv)};
  for (std::size_t g = g0; g < g1; ++g) out[g - g0] = moments{};
  alignas(64) float lane_a[kNhwcTile];  // centers
  alignas(64) float lane_e[kNhwcTile];  // deviation sums
  alignas(64) float lane_q[kNhwcTile];  // squared deviation sums
  bool refined[kNhwcTile];              // by segment start - t.a: the segment's center was refined
  const std::size_t C = geo.channels, R = geo.block_rows;
  nhwc_for_each_tile(geo, g0, g1, [&](const nhwc_tile& t) {
    const bool part = geo.cpg > t.width;  // the tile is part of one group: merge its moments after all blocks
    moments part_total;
    for (std::size_t row0 = 0; row0 < rows; row0 += R) {
      const std::size_t nr = std::min(R, rows - row0);
      const std::size_t base = row0 * C + t.a;
      std::size_t vrows = nr, rem = 0;
      if (t.packed) vrows = nr * C / t.lanes, rem = nr * C % t.lanes;
      // Center of each segment: the mean of its elements in up to 16 (virtual) rows evenly spread over the
      // block (the NCHW sample_center's idea), summed per lane in row order, then over the segment's lanes.
      const std::size_t sample_step = std::max<std::size_t>(1, vrows / simd::kWidth);
      const std::size_t sample_rows = std::min<std::size_t>(simd::kWidth, vrows);
      if (sample_rows > 0) nhwc_sample(s, t, base, sample_rows, sample_step * t.stride, lane_e);
      nhwc_segments(t, geo.cpg, [&](std::size_t, std::size_t lo, std::size_t hi) {
        const float center = sample_rows > 0
                                 ? static_cast<float>(nhwc_lane_sum(lane_e, t, lo, hi) /
                                                      static_cast<double>(sample_rows * t.reps * (hi - lo)))
                                 : s.at(row0 * C + lo);  // a packed block shorter than one virtual row
        nhwc_fill(lane_a, t, lo, hi, center);
      });
      // Deviations from the centers, corrected by their sum. A segment whose center is off by more than
      // std / sqrt(3) (see block_moments_lockstep) gets the refined center c + E / n, and the pass is
      // repeated for it (the other segments keep their centers, so the repeat would give them the same sums).
      auto emit = [&](std::size_t g, std::size_t lo, std::size_t hi, double n, double e, double q) {
        moments m{n, lane_a[lo - t.a] + e / n, q - e * e / n < 0.0 ? 0.0 : q - e * e / n};
        if (!std::isfinite(m.mean) || !std::isfinite(m.m2)) [[unlikely]] {
          // Overflowing float squares or non-finite data: exact double path, as in the NCHW block_moments.
          const std::size_t w = hi - lo;
          m = block_moments_double(nr * w, [&](std::size_t i) {
            return static_cast<double>(s.at((row0 + i / w) * C + lo + i % w));
          });
        }
        merge_into(part ? part_total : out[g - g0], m);
      };
      std::fill(lane_e, lane_e + t.lanes, 0.0f);
      std::fill(lane_q, lane_q + t.lanes, 0.0f);
      nhwc_pass(s, t, base, vrows, rem, lane_a, lane_e, lane_q);
      bool any_refined = false;
      nhwc_segments(t, geo.cpg, [&](std::size_t g, std::size_t lo, std::size_t hi) {
        const double n = static_cast<double>(nr * (hi - lo));
        const double e = nhwc_lane_sum(lane_e, t, lo, hi), q = nhwc_lane_sum(lane_q, t, lo, hi);
        refined[lo - t.a] = !(4.0 * e * e / n <= q);  // NaN: refined, then the double path
        if (!refined[lo - t.a]) [[likely]]
          return emit(g, lo, hi, n, e, q);
        any_refined = true;
        nhwc_fill(lane_a, t, lo, hi, static_cast<float>(lane_a[lo - t.a] + e / n));
      });
      if (!any_refined) [[likely]]
        continue;
      std::fill(lane_e, lane_e + t.lanes, 0.0f);
      std::fill(lane_q, lane_q + t.lanes, 0.0f);
      nhwc_pass(s, t, base, vrows, rem, lane_a, lane_e, lane_q);
      nhwc_segments(t, geo.cpg, [&](std::size_t g, std::size_t lo, std::size_t hi) {
        if (refined[lo - t.a])
          emit(g, lo, hi, static_cast<double>(nr * (hi - lo)), nhwc_lane_sum(lane_e, t, lo, hi),
               nhwc_lane_sum(lane_q, t, lo, hi));
      });
    }
    if (part) merge_into(out[t.a / geo.cpg - g0], part_total);
  });
}
}  // namespace
}  // namespace groupnorm::detail
