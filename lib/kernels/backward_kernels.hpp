// Backward kernel interface: pure loops over one channel row (NCHW) or a tile of channel lanes (NHWC), no
// knowledge of threads. Every family is the same source (backward_impl.hpp) compiled with its own target
// flags, element-wise IEEE float on fixed lanes with -ffp-contract=off, so every family gives the same bits.
//
// Per element, with d = x - mean: xhat = d * rstd, z = fma(d, scale, beta) (the forward's pre-activation),
// dz = dy * act'(z). The reductions are sum(dz) and sum(dz * xhat) per channel; the gradient is
// dx = fma(a, dz, fma(b, xhat, c)) with a = rstd gamma, b = -rstd mean(g xhat), c = -rstd mean(g), g = gamma
// dz (b multiplies xhat, not d: rstd^2 would overflow float for a slice of std < 1e-19).
#pragma once

#include <cstddef>

#include "kernels/kernels.hpp"

namespace groupnorm::detail {

// NCHW: a row (one channel of one sample) is reduced in blocks of kBackwardBlockElems elements summed in 32
// float lanes (128 elements per lane: the float sum stays within ~1e-5 of its magnitude), each block's sums
// added in double in block order.
inline constexpr std::size_t kBackwardBlockElems = 4096;
// NHWC: a channel is reduced in blocks of kBackwardBlockRows rows summed in one float lane, each block's sum
// added in double in block order (the same per-element error bound as NCHW).
inline constexpr std::size_t kBackwardBlockRows = 128;

// Per-channel constants of the element formula above (all float, from the float mean and rstd).
struct backward_channel {
  float mean, rstd, scale, beta;
};
struct backward_coefs {
  float a, b, c;
};

// Widest tile of rows (NCHW) or lanes (NHWC) the kernels take: the callers' constant arrays live on the
// stack.
inline constexpr std::size_t kBackwardLaneTile = 256;

// Per-channel constants in arrays (one entry per NCHW row or NHWC lane).
struct lane_params {
  const float* mean;
  const float* rstd;
  const float* scale;
  const float* beta;
};
struct lane_coefs {
  const float* a;
  const float* b;
  const float* c;
};

// NCHW: `rows` channel rows of n contiguous elements each (row r at x + r * n, constants at index r):
// out[2 r] = sum(dz), out[2 r + 1] = sum(dz * xhat) of row r.
using rows_sums_fn = void (*)(const void* x, const void* dy, std::size_t rows, std::size_t n,
                              const lane_params& p, double* out);
// NCHW: dx of those rows (dx may equal dy).
using rows_dx_fn = void (*)(const void* x, const void* dy, void* dx, std::size_t rows, std::size_t n,
                            const lane_params& p, const lane_coefs& k);

// NHWC: `width` channel lanes per row, rows `stride` elements apart (pointers at row 0, first lane).
// out[l] = sum(dz), out[width + l] = sum(dz * xhat) of lane l over `rows` rows.
using lane_sums_fn = void (*)(const void* x, const void* dy, std::size_t rows, std::size_t stride,
                              std::size_t width, const lane_params& p, double* out);
using lane_dx_fn = void (*)(const void* x, const void* dy, void* dx, std::size_t rows, std::size_t stride,
                            std::size_t width, const lane_params& p, const lane_coefs& k);

struct backward_table {
  isa family;
  rows_sums_fn rows_sums[kDtypes][kActivations];
  rows_dx_fn rows_dx[kDtypes][kActivations];
  lane_sums_fn lane_sums[kDtypes][kActivations];
  lane_dx_fn lane_dx[kDtypes][kActivations];
};

}  // namespace groupnorm::detail
