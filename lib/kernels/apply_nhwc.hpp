// NHWC apply pass: y = activation((v - mean_hi[g]) * scale[c] + shift[c]) with per-lane constants, tile by
// tile, with optional non-temporal stores.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "kernels/nhwc_tile.hpp"
#include "kernels/source.hpp"

namespace groupnorm::detail {
namespace {  // internal linkage per ISA translation unit, see simd/simd.hpp

// V vectors of `rows` rows, `stride` elements apart, starting at element `at`.
template <std::size_t V, class T, bool WriteSum, activation A, class Src>
inline void nhwc_apply_strip(const Src s, T* const out, T* const sum_out, const std::size_t at,
                             const std::size_t rows, const std::size_t stride, const float* lane_m,
                             const float* lane_s, const float* lane_b, const bool nt) noexcept {
  vf m[V], sc[V], sh[V];
#pragma GCC unroll 4
  for (std::size_t v = 0; v < V; ++v) {
    m[v] = simd::load(lane_m + v * simd::kWidth);
    sc[v] = simd::load(lane_s + v * simd::kWidth);
    sh[v] = simd::load(lane_b + v * simd::kWidth);
  }
  for (std::size_t r = 0; r < rows; ++r) {
#pragma GCC unroll 4
    for (std::size_t v = 0; v < V; ++v) {
      const std::size_t i = at + r * stride + v * simd::kWidth;
      const vf x = s.vec(i);
      if constexpr (WriteSum) storage<T>::store(sum_out + i, x);
      const vf y = activate<A>(simd::fma(x - m[v], sc[v], sh[v]));
      if constexpr (std::is_same_v<T, float>) {
        if (nt) {
          simd::stream(out + i, y);
          continue;
        }
      }
      storage<T>::store(out + i, y);
    }
  }
}

// The rows of one tile, given its per-lane constants. Everything arrives by value: the memcpy-based stores
// may alias any memory, so values reached through a closure or a reference would be reloaded every vector.
template <class T, bool Residual, bool WriteSum, activation A>
void nhwc_apply_tile(const source<T, Residual> s, T* const out, T* const sum_out, const nhwc_tile t,
                     const std::size_t rows, const std::size_t C, const float* const lane_m,
                     const float* const lane_s, const float* const lane_b, const bool stream) noexcept {
  std::size_t vrows = rows, rem = 0;
  if (t.packed) vrows = rows * C / t.lanes, rem = rows * C % t.lanes;
  const std::size_t vecs = t.lanes / simd::kWidth, tail = t.lanes % simd::kWidth;
  auto one = [&](std::size_t l, std::size_t i) {
    const float v = s.at(i);
    if constexpr (WriteSum) storage<T>::store1(sum_out + i, v);
    storage<T>::store1(out + i, apply_one<A>(v, lane_m[l], lane_s[l], lane_b[l]));
  };
  // Non-temporal stores only when every vector store of the tile is 64-byte aligned (float rows whose
  // stride is a whole number of lines), so no line is written partly streamed and partly cached.
  bool nt = false;
  if constexpr (std::is_same_v<T, float>)
    nt = stream && vecs > 0 && (t.stride * sizeof(T)) % 64 == 0 &&
         reinterpret_cast<std::uintptr_t>(out + t.a) % 64 == 0;
  // Rows of at most 4 vectors (narrow tiles: small C, InstanceNorm-like units) keep their constants in
  // registers for the whole walk, which stays sequential. Wider rows go row by row, loading the constants:
  // walking a 4-vector strip down wide rows instead costs more in strided access than the loads save
  // (docs/performance-notes.md).
  if (vecs <= 4) {
    with_strip_width(vecs, [&](auto width) {
      nhwc_apply_strip<width(), T, WriteSum, A>(s, out, sum_out, t.a, vrows, t.stride, lane_m, lane_s, lane_b,
                                                nt);
    });
  } else {
    for (std::size_t r = 0; r < vrows; ++r) {
      const std::size_t row = t.a + r * t.stride;
      for (std::size_t v = 0; v < vecs; ++v) {
        const std::size_t l = v * simd::kWidth, i = row + l;
        const vf x = s.vec(i);
        if constexpr (WriteSum) storage<T>::store(sum_out + i, x);
        const vf y = activate<A>(
            simd::fma(x - simd::load(lane_m + l), simd::load(lane_s + l), simd::load(lane_b + l)));
        if constexpr (std::is_same_v<T, float>) {
          if (nt) {
            simd::stream(out + i, y);
            continue;
          }
        }
        storage<T>::store(out + i, y);
      }
    }
  }
  for (std::size_t r = 0; r < vrows && tail > 0; ++r) {
    const std::size_t row = t.a + r * t.stride;
    for (std::size_t j = 0; j < tail; ++j) one(vecs * simd::kWidth + j, row + vecs * simd::kWidth + j);
  }
  const std::size_t row = t.a + vrows * t.stride;
  for (std::size_t j = 0; j < rem; ++j) one(j, row + j);
  if (nt) simd::stream_fence();
}

// y = (v - mean_hi[g]) * scale[c] + shift[c], the NCHW apply's formula with per-lane constants.
template <class T, bool Residual, bool WriteSum, activation A>
void nhwc_apply(const void* xv, const void* rv, void* yv, void* sumv, std::size_t rows, std::size_t g0,
                std::size_t g1, const nhwc_geometry& geo, const float* gamma, const float* beta,
                const slice_stats* stats, bool stream) noexcept {
  const source<T, Residual> s{static_cast<const T*>(xv), static_cast<const T*>(rv)};
  T* out = static_cast<T*>(yv);
  T* sum_out = static_cast<T*>(sumv);
  alignas(64) float lane_m[kNhwcTile];
  alignas(64) float lane_s[kNhwcTile];
  alignas(64) float lane_b[kNhwcTile];
  const std::size_t C = geo.channels;
  nhwc_for_each_tile(geo, g0, g1, [&](const nhwc_tile& t) {
    // Per-lane constants, group by group: no division per channel, since a row-split run redoes this for
    // every chunk of rows.
    nhwc_segments(t, geo.cpg, [&](std::size_t g, std::size_t lo, std::size_t hi) {
      const group_affine aff(stats[g - g0]);
      float* const m = lane_m + (lo - t.a);
      float* const sc = lane_s + (lo - t.a);
      float* const sh = lane_b + (lo - t.a);
      for (std::size_t c = lo; c < hi; ++c) {
        const float scale = aff.scale(gamma, c);
        m[c - lo] = aff.mean_hi;
        sc[c - lo] = scale;
        sh[c - lo] = aff.shift(beta, c, scale);
      }
    });
    for (std::size_t p = 1; p < t.reps; ++p) {  // packed rows: the other copies of the channels
      std::copy(lane_m, lane_m + t.width, lane_m + p * t.width);
      std::copy(lane_s, lane_s + t.width, lane_s + p * t.width);
      std::copy(lane_b, lane_b + t.width, lane_b + p * t.width);
    }
    nhwc_apply_tile<T, Residual, WriteSum, A>(s, out, sum_out, t, rows, C, lane_m, lane_s, lane_b, stream);
  });
}
}  // namespace
}  // namespace groupnorm::detail
