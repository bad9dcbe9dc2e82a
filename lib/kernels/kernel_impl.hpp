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

// A center for the deviation pass: the mean of kWidth elements spread evenly over the block, summed in the
// fixed reduce() tree. For most data it lands within a fraction of a standard deviation of the block mean,
// which is all the corrected formula below needs; when it does not, the caller refines it.
template <class Src>
inline float sample_center(const Src& s, std::size_t n) noexcept {
  vf v;  // lane inserts: 16 scalar stores reloaded as one vector would stall on store forwarding
  for (int j = 0; j < simd::kWidth; ++j)
    simd::set_lane(v, j, s.at(static_cast<std::size_t>(j) * n / simd::kWidth));
  return simd::reduce(v) * (1.0f / simd::kWidth);
}

// The elements [i, n) of a block's last, partial 32-lane row as two vectors, the lanes past n holding `fill`
// (the center, so their deviation is an exact +0: adding it leaves a lane sum unchanged, as lane sums start
// at +0 and so are never -0). Whole-vector updates keep the accumulators in registers on every ISA.
template <class Src>
inline void tail_rows(const Src& s, std::size_t i, std::size_t n, float fill, vf& t0, vf& t1) noexcept {
  t0 = t1 = simd::splat(fill);
  for (std::size_t j = 0; i + j < n; ++j) {
    const int lane = static_cast<int>(j % simd::kWidth);
    if (j < simd::kWidth)
      simd::set_lane(t0, lane, s.at(i + j));
    else
      simd::set_lane(t1, lane, s.at(i + j));
  }
}

// Sums of d = x - center and d * d over the N blocks in lockstep (32 float lanes each, element i of a block
// in lane i % 32), reduced in the fixed tree.
template <int N, class Src>
void deviation_sums(const Src* s, std::size_t n, const float* center, double* e, double* q) noexcept {
  vf center_v[N], e0[N], e1[N], q0[N], q1[N];
  for (int k = 0; k < N; ++k) {
    center_v[k] = simd::splat(center[k]);
    e0[k] = e1[k] = q0[k] = q1[k] = vf{};
  }
  auto add = [&](int k, vf x0, vf x1) {  // one 32-lane row of block k
    const vf d0 = x0 - center_v[k], d1 = x1 - center_v[k];
    e0[k] += d0;
    e1[k] += d1;
    q0[k] = simd::fma(d0, d0, q0[k]);
    q1[k] = simd::fma(d1, d1, q1[k]);
  };
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int k = 0; k < N; ++k) add(k, s[k].vec(i), s[k].vec(i + simd::kWidth));
  if (i < n) {
    for (int k = 0; k < N; ++k) {
      vf t0, t1;
      tail_rows(s[k], i, n, center[k], t0, t1);
      add(k, t0, t1);
    }
  }
  for (int k = 0; k < N; ++k) {
    e[k] = simd::reduce(e0[k] + e1[k]);
    q[k] = simd::reduce(q0[k] + q1[k]);
  }
}

// Moments of N blocks of n elements each (0 < n <= kBlockElems), by the corrected two-pass formula around a
// float center c: with E = sum(x - c) and Q = sum((x - c)^2) in float lanes, m2 = Q - E^2 / n. Its rounding
// error is that of Q, which grows with the center's offset d = E / n as Q / m2 = 1 + n d^2 / m2. So:
//  - the first pass uses the sampled center; when its offset passes d^2 <= var / 3 (Q / m2 <= 4 / 3), that
//    pass is the answer: one read of the block instead of two (data on which a strided sample of 16 misses
//    the mean by that much is rare: ~2% of i.i.d. normal blocks);
//  - otherwise a second pass around c + E / n (a mean accurate to float rounding) is the answer.
// Every step depends on the block's values only, so the result is the same on every ISA and thread count.
// The N blocks run in lockstep: each sees exactly the operations of N = 1, in the same order (the same
// bits), while their independent latency chains (lane sums, tree reductions, divisions) overlap.
template <int N, class Src>
void block_moments_lockstep(const Src* s, std::size_t n, moments* out) noexcept {
  // Multiplying by a reciprocal computed up front keeps the divisions off the block's latency chain.
  const double count = static_cast<double>(n), inv_count = 1.0 / count;
  float center[N];
  double e[N], q[N];
  for (int k = 0; k < N; ++k) center[k] = sample_center(s[k], n);
  deviation_sums<N>(s, n, center, e, q);
  for (int k = 0; k < N; ++k) {
    // 3 n d^2 <= m2 = Q - n d^2  <=>  4 E^2 / n <= Q. False for NaN, which the refinement then carries on.
    if (!(4.0 * e[k] * e[k] * inv_count <= q[k])) [[unlikely]] {
      center[k] = static_cast<float>(center[k] + e[k] * inv_count);
      deviation_sums<1>(s + k, n, center + k, e + k, q + k);
    }
    const double m2 = q[k] - e[k] * e[k] * inv_count;
    const moments m{count, center[k] + e[k] * inv_count, m2 < 0.0 ? 0.0 : m2};  // clamps rounding, keeps NaN
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

template <class T, bool Residual>
moments exact_moments(const void* x, const void* residual, std::size_t rows, std::size_t width,
                      std::size_t stride) noexcept {
  const source<T, Residual> s{static_cast<const T*>(x), static_cast<const T*>(residual)};
  return block_moments_double(
      rows * width, [&](std::size_t i) { return static_cast<double>(s.at(i / width * stride + i % width)); });
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
      const float v = s.at(at);
      if constexpr (WriteSum) storage<T>::store1(sum_out + at, v);
      storage<T>::store1(out + at, activate<A>(simd::splat(std::fma(v - mean_hi, scale, shift)))[0]);
    };
    if constexpr (can_stream) {
      if (stream) {
        for (; i < seg_end && reinterpret_cast<std::uintptr_t>(out + i) % 64 != 0; ++i) one(i);
        for (; i + simd::kWidth <= seg_end; i += simd::kWidth) {
          const vf v = s.vec(i);
          if constexpr (WriteSum) storage<T>::store(sum_out + i, v);
          simd::stream(out + i, activate<A>(simd::fma(v - mean_v, scale_v, shift_v)));
        }
      }
    }
    for (; i + simd::kWidth <= seg_end; i += simd::kWidth) {
      const vf v = s.vec(i);
      if constexpr (WriteSum) storage<T>::store(sum_out + i, v);
      storage<T>::store(out + i, activate<A>(simd::fma(v - mean_v, scale_v, shift_v)));
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
  t.exact_moments[k][0] = exact_moments<T, false>;
  t.exact_moments[k][1] = exact_moments<T, true>;
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
