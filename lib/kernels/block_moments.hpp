// Moments of blocks of at most kBlockElems elements: the corrected two-pass formula around a sampled center,
// several blocks in lockstep, and the exact double path for blocks the float lanes cannot represent.
#pragma once

#include <cmath>
#include <cstddef>

#include "kernels/kernels.hpp"
#include "simd/simd.hpp"

namespace groupnorm::detail {
namespace {  // internal linkage per ISA translation unit, see simd/simd.hpp

using simd::vf;

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
  // Lane inserts (16 scalar stores reloaded as one vector would stall on store forwarding) into a zeroed
  // vector: GCC cannot see that the inserts cover every lane (-Wmaybe-uninitialized).
  vf v = simd::splat(0.0f);
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
  auto add = [&](int k, vf x0, vf x1) GROUPNORM_HOT_INLINE {  // one 32-lane row of block k
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
}  // namespace
}  // namespace groupnorm::detail
