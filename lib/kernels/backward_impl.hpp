// The one generic backward kernel source, included by kernels_<family>.cpp (each compiled with its family's
// target flags); everything has internal linkage, as in kernels/family.hpp.
#pragma once

#include <algorithm>
#include <cstddef>

#include "kernels/activation_grad.hpp"
#include "kernels/backward_kernels.hpp"
#include "simd/convert.hpp"
#include "simd/simd.hpp"

namespace groupnorm::detail {
namespace {
namespace bwd {

using simd::splat;
using simd::vf;

// The element formula of backward_kernels.hpp on 16 lanes.
struct element {
  vf mean, rstd, scale, beta;
  template <activation A>
  [[gnu::always_inline]] vf dz(vf dy, vf d) const noexcept {
    if constexpr (A == activation::none) return dy;
    return activation_backward<A>(dy, simd::fma(d, scale, beta));
  }
};

// Adds one 16-lane step of sums: sa += dz, sb += dz * xhat.
template <class T, activation A>
[[gnu::always_inline]] inline void sum_step(const element& e, vf x, vf dy, vf& sa, vf& sb) noexcept {
  const vf d = x - e.mean;
  const vf dz = e.dz<A>(dy, d);
  sa += dz;
  sb = simd::fma(dz, d * e.rstd, sb);
}

// The elements [i, n) (fewer than 32) as two vectors; absent lanes get x = mean, dy = 0, so they add +-0.
template <class T>
void tail_pair(const T* x, const T* dy, std::size_t i, std::size_t n, float mean, vf (&xv)[2],
               vf (&gv)[2]) noexcept {
  xv[0] = xv[1] = splat(mean);
  gv[0] = gv[1] = vf{};
  for (std::size_t j = 0; i + j < n; ++j) {
    const int lane = static_cast<int>(j % simd::kWidth), half = static_cast<int>(j / simd::kWidth);
    simd::set_lane(xv[half], lane, storage<T>::load1(x + i + j));
    simd::set_lane(gv[half], lane, storage<T>::load1(dy + i + j));
  }
}

// Per-lane constants of lanes [j, j + 16), and lane j's on all 16 lanes.
[[gnu::always_inline]] inline element lanes_at(const lane_params& p, std::size_t j) noexcept {
  return {simd::load(p.mean + j), simd::load(p.rstd + j), simd::load(p.scale + j), simd::load(p.beta + j)};
}
[[gnu::always_inline]] inline element lane_splat(const lane_params& p, std::size_t j) noexcept {
  return {splat(p.mean[j]), splat(p.rstd[j]), splat(p.scale[j]), splat(p.beta[j])};
}

template <class T, activation A>
[[gnu::always_inline]] inline void row_sums(const T* x, const T* dy, std::size_t n, const element& e,
                                            float mean, double* out) noexcept {
  double total_a = 0, total_b = 0;
  for (std::size_t b = 0; b < n; b += kBackwardBlockElems) {
    const std::size_t end = std::min(n, b + kBackwardBlockElems);
    vf a0{}, a1{}, b0{}, b1{};
    std::size_t i = b;
    for (; i + 2 * simd::kWidth <= end; i += 2 * simd::kWidth) {
      sum_step<T, A>(e, storage<T>::load(x + i), storage<T>::load(dy + i), a0, b0);
      sum_step<T, A>(e, storage<T>::load(x + i + simd::kWidth), storage<T>::load(dy + i + simd::kWidth), a1,
                     b1);
    }
    if (i < end) {
      vf xv[2], gv[2];
      tail_pair(x, dy, i, end, mean, xv, gv);
      sum_step<T, A>(e, xv[0], gv[0], a0, b0);
      sum_step<T, A>(e, xv[1], gv[1], a1, b1);
    }
    total_a += simd::reduce(a0 + a1);
    total_b += simd::reduce(b0 + b1);
  }
  out[0] = total_a;
  out[1] = total_b;
}

template <class T, activation A>
[[gnu::always_inline]] inline vf dx_of(const element& e, vf x, vf dy, vf a, vf b, vf c) noexcept {
  const vf d = x - e.mean;
  return simd::fma(a, e.dz<A>(dy, d), simd::fma(b, d * e.rstd, c));
}

template <class T, activation A>
void rows_sums(const void* xp, const void* dyp, std::size_t rows, std::size_t n, const lane_params& p,
               double* out) noexcept {
  const T* x = static_cast<const T*>(xp);
  const T* dy = static_cast<const T*>(dyp);
  for (std::size_t r = 0; r < rows; ++r)
    row_sums<T, A>(x + r * n, dy + r * n, n, lane_splat(p, r), p.mean[r], out + 2 * r);
}

template <class T, activation A>
[[gnu::always_inline]] inline void row_dx(const T* x, const T* dy, T* dx, std::size_t n, const element& e,
                                          vf a, vf b, vf c) noexcept {
  std::size_t i = 0;
  for (; i + simd::kWidth <= n; i += simd::kWidth)
    storage<T>::store(dx + i, dx_of<T, A>(e, storage<T>::load(x + i), storage<T>::load(dy + i), a, b, c));
  for (; i < n; ++i)  // lane 0 of the same vector code: the same bits as a full vector
    storage<T>::store1(dx + i, dx_of<T, A>(e, splat(storage<T>::load1(x + i)),
                                           splat(storage<T>::load1(dy + i)), a, b, c)[0]);
}

template <class T, activation A>
void rows_dx(const void* xp, const void* dyp, void* dxp, std::size_t rows, std::size_t n,
             const lane_params& p, const lane_coefs& k) noexcept {
  const T* x = static_cast<const T*>(xp);
  const T* dy = static_cast<const T*>(dyp);
  T* dx = static_cast<T*>(dxp);
  for (std::size_t r = 0; r < rows; ++r)
    row_dx<T, A>(x + r * n, dy + r * n, dx + r * n, n, lane_splat(p, r), splat(k.a[r]), splat(k.b[r]),
                 splat(k.c[r]));
}

// NHWC sums: each lane (channel) sums its rows in order within blocks of kBackwardBlockRows rows, a block's
// float sum added in double in block order; a lane's result does not depend on the tile it is in.
template <class T, activation A>
void lane_sums(const void* xp, const void* dyp, std::size_t rows, std::size_t stride, std::size_t width,
               const lane_params& p, double* out) noexcept {
  const T* x = static_cast<const T*>(xp);
  const T* dy = static_cast<const T*>(dyp);
  std::fill(out, out + 2 * width, 0.0);
  for (std::size_t r0 = 0; r0 < rows; r0 += kBackwardBlockRows) {
    const std::size_t r1 = std::min(rows, r0 + kBackwardBlockRows);
    std::size_t j = 0;
    for (; j + simd::kWidth <= width; j += simd::kWidth) {
      const element e = lanes_at(p, j);
      vf sa{}, sb{};
      for (std::size_t r = r0; r < r1; ++r)
        sum_step<T, A>(e, storage<T>::load(x + r * stride + j), storage<T>::load(dy + r * stride + j), sa,
                       sb);
      for (int l = 0; l < simd::kWidth; ++l) {
        out[j + l] += sa[l];
        out[width + j + l] += sb[l];
      }
    }
    for (; j < width; ++j) {
      const element e = lane_splat(p, j);
      vf sa{}, sb{};
      for (std::size_t r = r0; r < r1; ++r)
        sum_step<T, A>(e, splat(storage<T>::load1(x + r * stride + j)),
                       splat(storage<T>::load1(dy + r * stride + j)), sa, sb);
      out[j] += sa[0];
      out[width + j] += sb[0];
    }
  }
}

template <class T, activation A>
void lane_dx(const void* xp, const void* dyp, void* dxp, std::size_t rows, std::size_t stride,
             std::size_t width, const lane_params& p, const lane_coefs& k) noexcept {
  const T* x = static_cast<const T*>(xp);
  const T* dy = static_cast<const T*>(dyp);
  T* dx = static_cast<T*>(dxp);
  for (std::size_t r = 0; r < rows; ++r) {
    const std::size_t o = r * stride;
    std::size_t j = 0;
    for (; j + simd::kWidth <= width; j += simd::kWidth)
      storage<T>::store(dx + o + j,
                        dx_of<T, A>(lanes_at(p, j), storage<T>::load(x + o + j), storage<T>::load(dy + o + j),
                                    simd::load(k.a + j), simd::load(k.b + j), simd::load(k.c + j)));
    for (; j < width; ++j)
      storage<T>::store1(dx + o + j, dx_of<T, A>(lane_splat(p, j), splat(storage<T>::load1(x + o + j)),
                                                 splat(storage<T>::load1(dy + o + j)), splat(k.a[j]),
                                                 splat(k.b[j]), splat(k.c[j]))[0]);
  }
}

template <class T, activation A>
void fill_one(backward_table& t, int d) noexcept {
  const int a = static_cast<int>(A);
  t.rows_sums[d][a] = rows_sums<T, A>;
  t.rows_dx[d][a] = rows_dx<T, A>;
  t.lane_sums[d][a] = lane_sums<T, A>;
  t.lane_dx[d][a] = lane_dx<T, A>;
}

template <class T>
void fill_dtype(backward_table& t, dtype d) noexcept {
  const int k = static_cast<int>(d);
  fill_one<T, activation::none>(t, k);
  fill_one<T, activation::relu>(t, k);
  fill_one<T, activation::silu>(t, k);
  fill_one<T, activation::gelu>(t, k);
}

backward_table make_backward_table(isa family) noexcept {
  backward_table t{};
  t.family = family;
  fill_dtype<float>(t, dtype::f32);
  fill_dtype<f16>(t, dtype::f16);
  fill_dtype<bf16>(t, dtype::bf16);
  return t;
}

}  // namespace bwd
}  // namespace
}  // namespace groupnorm::detail
