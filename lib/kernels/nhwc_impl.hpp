// NHWC (channels-last) kernels. Included at the end of kernel_impl.hpp, so they are compiled once per ISA
// family with that family's flags and have internal linkage, exactly like the NCHW kernels.
//
// A sample is `spatial` rows of C contiguous channels; a group is a strided set of columns. Nothing is
// transposed: kernels vectorize across the channels of a row. Each float lane belongs to one channel for the
// whole call (a fixed lane assignment that depends on the shape only), so per-lane sums are the same
// element-wise IEEE operations on every ISA. Lanes are reduced to their group in a fixed (rep, channel) order
// in double.
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
#include <type_traits>

namespace groupnorm::detail {
namespace {

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

// Element access relative to a row-range start: x (+ residual), rounded to float once.
template <class T, bool Residual>
struct nhwc_source {
  const T* x;
  const T* r;
  vf vec(std::size_t i) const noexcept {
    if constexpr (Residual) return storage<T>::load(x + i) + storage<T>::load(r + i);
    return storage<T>::load(x + i);
  }
  float at(std::size_t i) const noexcept {
    if constexpr (Residual) return storage<T>::load1(x + i) + storage<T>::load1(r + i);
    return storage<T>::load1(x + i);
  }
};

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

// Calls f(g, lo, hi) for each group segment [lo, hi) (absolute channels) of tile t, in channel order.
// One division per call, not per segment: the loop runs three times per block, and a divide per segment (a
// dependent chain through lo) cost a few percent of an InstanceNorm run (C = G = 64: 1.52 -> 1.47 times the
// memcpy).
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

template <class T, bool Residual>
void nhwc_moments(const void* xv, const void* rv, std::size_t rows, std::size_t g0, std::size_t g1,
                  const nhwc_geometry& geo, moments* out) noexcept {
  const nhwc_source<T, Residual> s{static_cast<const T*>(xv), static_cast<const T*>(rv)};
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
void nhwc_apply_tile(const nhwc_source<T, Residual> s, T* const out, T* const sum_out, const nhwc_tile t,
                     const std::size_t rows, const std::size_t C, const float* const lane_m,
                     const float* const lane_s, const float* const lane_b, const bool stream) noexcept {
  std::size_t vrows = rows, rem = 0;
  if (t.packed) vrows = rows * C / t.lanes, rem = rows * C % t.lanes;
  const std::size_t vecs = t.lanes / simd::kWidth, tail = t.lanes % simd::kWidth;
  auto one = [&](std::size_t l, std::size_t i) {
    const float v = s.at(i);
    if constexpr (WriteSum) storage<T>::store1(sum_out + i, v);
    storage<T>::store1(out + i, activate<A>(simd::splat(std::fma(v - lane_m[l], lane_s[l], lane_b[l])))[0]);
  };
  // Non-temporal stores only when every vector store of the tile is 64-byte aligned (float rows whose
  // stride is a whole number of lines), so no line is written partly streamed and partly cached.
  bool nt = false;
  if constexpr (std::is_same_v<T, float>)
    nt = stream && vecs > 0 && (t.stride * sizeof(T)) % 64 == 0 &&
         reinterpret_cast<std::uintptr_t>(out + t.a) % 64 == 0;
  // Rows of at most 4 vectors (narrow tiles: small C, InstanceNorm-like units) keep their constants in
  // registers for the whole walk, which stays sequential. Wider rows go row by row, loading the constants:
  // walking a 4-vector strip down the rows instead was measured slower on the C = 640 / 1280 UNet shapes
  // (1.6 -> 1.9 and 1.55 -> 2.0 times the memcpy), the strided walk costing more than the loads.
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
  const nhwc_source<T, Residual> s{static_cast<const T*>(xv), static_cast<const T*>(rv)};
  T* out = static_cast<T*>(yv);
  T* sum_out = static_cast<T*>(sumv);
  alignas(64) float lane_m[kNhwcTile];
  alignas(64) float lane_s[kNhwcTile];
  alignas(64) float lane_b[kNhwcTile];
  const std::size_t C = geo.channels;
  nhwc_for_each_tile(geo, g0, g1, [&](const nhwc_tile& t) {
    // Per-lane constants, group by group (no division per channel: in a row-split run this is redone for
    // every chunk of rows, and a divide per channel showed up at 10% of a C = 1280 run).
    nhwc_segments(t, geo.cpg, [&](std::size_t g, std::size_t lo, std::size_t hi) {
      const slice_stats st = stats[g - g0];
      const float mean_hi = static_cast<float>(st.mean);
      const double mean_lo = st.mean - mean_hi;
      float* const m = lane_m + (lo - t.a);
      float* const sc = lane_s + (lo - t.a);
      float* const sh = lane_b + (lo - t.a);
      for (std::size_t c = lo; c < hi; ++c) {
        const float scale = static_cast<float>((gamma ? gamma[c] : 1.0) * st.rstd);
        m[c - lo] = mean_hi;
        sc[c - lo] = scale;
        sh[c - lo] = static_cast<float>((beta ? beta[c] : 0.0) - mean_lo * scale);
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

template <class T, bool Residual, bool WriteSum>
void fill_nhwc_apply(nhwc_apply_fn (&row)[kActivations]) noexcept {
  row[static_cast<int>(activation::none)] = nhwc_apply<T, Residual, WriteSum, activation::none>;
  row[static_cast<int>(activation::relu)] = nhwc_apply<T, Residual, WriteSum, activation::relu>;
  row[static_cast<int>(activation::silu)] = nhwc_apply<T, Residual, WriteSum, activation::silu>;
  row[static_cast<int>(activation::gelu)] = nhwc_apply<T, Residual, WriteSum, activation::gelu>;
}

template <class T>
void fill_nhwc_dtype(kernel_table& t, dtype d) noexcept {
  const int k = static_cast<int>(d);
  t.nhwc_moments[k][0] = nhwc_moments<T, false>;
  t.nhwc_moments[k][1] = nhwc_moments<T, true>;
  fill_nhwc_apply<T, false, false>(t.nhwc_apply[k][0][0]);
  fill_nhwc_apply<T, true, false>(t.nhwc_apply[k][1][0]);
  fill_nhwc_apply<T, true, true>(t.nhwc_apply[k][1][1]);
}

void fill_nhwc(kernel_table& t) noexcept {
  fill_nhwc_dtype<float>(t, dtype::f32);
  fill_nhwc_dtype<f16>(t, dtype::f16);
  fill_nhwc_dtype<bf16>(t, dtype::bf16);
}

}  // namespace
}  // namespace groupnorm::detail
