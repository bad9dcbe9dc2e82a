// The one generic kernel source. Included by kernels_<isa>.cpp, each compiled with its own target flags; all
// definitions have internal linkage (anonymous namespace) so no body compiled for one ISA leaks into another.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "kernels/activation.hpp"
#include "kernels/convert.hpp"
#include "kernels/kernels.hpp"
#include "kernels/simd.hpp"

namespace groupnorm::detail {
namespace {

using simd::vf;

// Element source: x, or x + residual (rounded to float once, the same value moments and apply see).
template <class T, bool Residual>
struct source {
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

// Lane layout of the moment accumulators: 32 lanes = two 16-lane vectors, element i of a block goes to lane i
// % 32. Two independent vectors halve the add-latency chain; the lane count is fixed, never derived from the
// ISA.
constexpr std::size_t kLanes = 2 * simd::kWidth;

inline void add_to_lane(vf& a0, vf& a1, std::size_t lane, float v) noexcept {
  if (lane < simd::kWidth)
    a0[lane] += v;
  else
    a1[lane - simd::kWidth] += v;
}

// Two-pass moments in double of n elements given by at(i): the slow, exact path for blocks the float lanes
// cannot represent. Plain sequential double arithmetic, so every ISA gives the same bits.
template <class At>
moments block_moments_double(std::size_t n, At&& at) noexcept {
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += at(i);
  const double count = static_cast<double>(n), mean = sum / count;
  double m2 = 0;
  for (std::size_t i = 0; i < n; ++i) m2 += (at(i) - mean) * (at(i) - mean);
  return {count, mean, m2};
}

// Moments of N blocks of n elements each (0 < n <= kBlockElems), two passes over L1-resident data:
// pass 1 finds the block mean relative to its first element (a shift that keeps float sums exact-ish even
// when |mean| >> std); pass 2 accumulates deviations from that mean and corrects with their sum (the
// corrected two-pass formula), giving two-pass accuracy from one memory read. The N blocks run in lockstep:
// every block sees exactly the operations of N = 1, in the same order (so the same bits), while their
// independent latency chains (lane sums, tree reductions, divisions) overlap. Tiny slices need that.
template <int N, class Src>
void block_moments_lockstep(const Src* s, std::size_t n, moments* out) noexcept {
  float shift[N], center[N];
  vf shift_v[N], center_v[N], a0[N], a1[N], e0[N], e1[N], q0[N], q1[N];
  for (int k = 0; k < N; ++k) {
    shift[k] = s[k].at(0);
    shift_v[k] = simd::splat(shift[k]);
    a0[k] = a1[k] = e0[k] = e1[k] = q0[k] = q1[k] = vf{};
  }
  // Multiplying by a reciprocal computed up front keeps the divisions off the block's latency chain.
  const double count = static_cast<double>(n), inv_count = 1.0 / count;
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int k = 0; k < N; ++k) {
      a0[k] += s[k].vec(i) - shift_v[k];
      a1[k] += s[k].vec(i + simd::kWidth) - shift_v[k];
    }
  }
  for (std::size_t j = 0; i + j < n; ++j)
    for (int k = 0; k < N; ++k) add_to_lane(a0[k], a1[k], j, s[k].at(i + j) - shift[k]);
  for (int k = 0; k < N; ++k) {
    center[k] = static_cast<float>(shift[k] + static_cast<double>(simd::reduce(a0[k] + a1[k])) * inv_count);
    center_v[k] = simd::splat(center[k]);
  }
  for (i = 0; i + kLanes <= n; i += kLanes) {
    for (int k = 0; k < N; ++k) {
      const vf d0 = s[k].vec(i) - center_v[k];
      const vf d1 = s[k].vec(i + simd::kWidth) - center_v[k];
      e0[k] += d0;
      e1[k] += d1;
      q0[k] += d0 * d0;
      q1[k] += d1 * d1;
    }
  }
  for (std::size_t j = 0; i + j < n; ++j) {
    for (int k = 0; k < N; ++k) {
      const float d = s[k].at(i + j) - center[k];
      add_to_lane(e0[k], e1[k], j, d);
      add_to_lane(q0[k], q1[k], j, d * d);
    }
  }
  for (int k = 0; k < N; ++k) {
    const double e = simd::reduce(e0[k] + e1[k]);
    const double q = simd::reduce(q0[k] + q1[k]);
    const double m2 = q - e * e * inv_count;
    const moments m{count, center[k] + e * inv_count, m2 < 0.0 ? 0.0 : m2};  // clamps rounding, keeps a NaN
    if (std::isfinite(m.mean) && std::isfinite(m.m2)) [[likely]] {
      out[k] = m;
      continue;
    }
    // Finite data whose deviations overflow float squares (|x - mean| > ~1e19), or non-finite data: redo the
    // block in double, which gives the reference's answer (NaN / Inf propagate as they would there).
    out[k] = block_moments_double(n, [&](std::size_t at) { return static_cast<double>(s[k].at(at)); });
  }
}

template <class Src>
moments block_moments(const Src& s, std::size_t n) noexcept {
  moments m;
  block_moments_lockstep<1>(&s, n, &m);
  return m;
}

// Moments of `count` slices of n <= kBlockElems elements each, `stride` elements apart: each result equals
// chunk_moments of that slice bit for bit (one block merged into an empty total is that block), computed four
// slices in lockstep.
template <class T, bool Residual>
void small_slices_moments(const void* x, const void* residual, std::size_t stride, std::size_t n,
                          std::size_t count, moments* out) noexcept {
  using src = source<T, Residual>;
  const T* xs = static_cast<const T*>(x);
  const T* rs = static_cast<const T*>(residual);
  auto at = [&](std::size_t k) { return src{xs + k * stride, Residual ? rs + k * stride : nullptr}; };
  std::size_t k = 0;
  for (; k + 4 <= count; k += 4) {
    const src s[4] = {at(k), at(k + 1), at(k + 2), at(k + 3)};
    block_moments_lockstep<4>(s, n, out + k);
  }
  for (; k < count; ++k) {
    const src s = at(k);
    block_moments_lockstep<1>(&s, n, out + k);
  }
}

template <class T, bool Residual>
moments chunk_moments(const void* x, const void* residual, std::size_t n) noexcept {
  const source<T, Residual> s{static_cast<const T*>(x), static_cast<const T*>(residual)};
  moments total;
  for (std::size_t b = 0; b < n; b += kBlockElems) {
    const source<T, Residual> block{s.x + b, Residual ? s.r + b : nullptr};
    merge_into(total, block_moments(block, std::min(kBlockElems, n - b)));
  }
  return total;
}

// y = (v - mean_hi) * scale + shift per channel, where mean_hi = float(mean) and shift absorbs the rest of
// the mean. v - mean_hi is exact when v is near the mean (Sterbenz), so large offsets (mean 1e4, std 1) keep
// full precision, which a folded y = v * scale + (beta - mean * scale) in float would not (its shift carries
// an absolute error of ulp(mean * scale)).
template <class T, bool Residual, bool WriteSum, activation A>
void apply(const void* x, const void* residual, void* y, void* sum, std::size_t begin, std::size_t end,
           std::size_t spatial, const float* gamma, const float* beta, slice_stats stats,
           bool stream) noexcept {
  const source<T, Residual> s{static_cast<const T*>(x), static_cast<const T*>(residual)};
  T* out = static_cast<T*>(y);
  T* sum_out = static_cast<T*>(sum);
  const float mean_hi = static_cast<float>(stats.mean);
  const double mean_lo = stats.mean - mean_hi;
  const vf mean_v = simd::splat(mean_hi);
  // Non-temporal stores need 64-byte aligned destinations; only float output streams.
  constexpr bool can_stream = std::is_same_v<T, float>;
  stream = stream && can_stream;
  std::size_t i = begin;
  for (std::size_t c = begin / spatial; i < end; ++c) {
    const std::size_t seg_end = std::min(end, (c + 1) * spatial);
    const float scale = static_cast<float>((gamma ? gamma[c] : 1.0) * stats.rstd);
    const float shift = static_cast<float>((beta ? beta[c] : 0.0) - mean_lo * scale);
    const vf scale_v = simd::splat(scale), shift_v = simd::splat(shift);
    auto one = [&](std::size_t at) {
      vf v{};
      v[0] = s.at(at);
      if constexpr (WriteSum) storage<T>::store1(sum_out + at, v[0]);
      storage<T>::store1(out + at, activate<A>((v - mean_v) * scale_v + shift_v)[0]);
    };
    if constexpr (can_stream) {
      if (stream) {
        for (; i < seg_end && reinterpret_cast<std::uintptr_t>(out + i) % 64 != 0; ++i) one(i);
        for (; i + simd::kWidth <= seg_end; i += simd::kWidth) {
          const vf v = s.vec(i);
          if constexpr (WriteSum) storage<T>::store(sum_out + i, v);
          simd::stream(out + i, activate<A>((v - mean_v) * scale_v + shift_v));
        }
      }
    }
    for (; i + simd::kWidth <= seg_end; i += simd::kWidth) {
      const vf v = s.vec(i);
      if constexpr (WriteSum) storage<T>::store(sum_out + i, v);
      storage<T>::store(out + i, activate<A>((v - mean_v) * scale_v + shift_v));
    }
    for (; i < seg_end; ++i) one(i);
  }
  if (stream) simd::stream_fence();
}

template <class T, bool Residual, bool WriteSum>
void fill_apply(apply_fn (&row)[kActivations]) noexcept {
  row[static_cast<int>(activation::none)] = apply<T, Residual, WriteSum, activation::none>;
  row[static_cast<int>(activation::relu)] = apply<T, Residual, WriteSum, activation::relu>;
  row[static_cast<int>(activation::silu)] = apply<T, Residual, WriteSum, activation::silu>;
  row[static_cast<int>(activation::gelu)] = apply<T, Residual, WriteSum, activation::gelu>;
}

template <class T>
void fill_dtype(kernel_table& t, dtype d) noexcept {
  const int k = static_cast<int>(d);
  t.chunk_moments[k][0] = chunk_moments<T, false>;
  t.chunk_moments[k][1] = chunk_moments<T, true>;
  t.small_slices_moments[k][0] = small_slices_moments<T, false>;
  t.small_slices_moments[k][1] = small_slices_moments<T, true>;
  fill_apply<T, false, false>(t.apply[k][0][0]);
  fill_apply<T, true, false>(t.apply[k][1][0]);
  fill_apply<T, true, true>(t.apply[k][1][1]);
  // [0][1] (sum without residual) is rejected by the plan.
}

void fill_nhwc(kernel_table& t) noexcept;  // lib/kernels/nhwc_impl.hpp, included below

kernel_table make_table(isa family) noexcept {
  kernel_table t{};
  t.family = family;
  fill_nhwc(t);
  fill_dtype<float>(t, dtype::f32);
  fill_dtype<f16>(t, dtype::f16);
  fill_dtype<bf16>(t, dtype::bf16);
  return t;
}

}  // namespace
}  // namespace groupnorm::detail

#include "kernels/nhwc_impl.hpp"  // NHWC kernels, same flags and linkage
