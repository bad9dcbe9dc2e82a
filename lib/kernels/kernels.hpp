// Kernel interface: the loops of each pass (moments, apply) and layout, as a table of function pointers.
// Kernels are pure loops over a given range with no knowledge of threads (lib/schedule decides who runs
// what). Every family is the same source (kernels/family.hpp) compiled with its own target flags; all
// arithmetic is element-wise IEEE float on a fixed number of lanes with -ffp-contract=off, so every family
// produces the same bits.
#pragma once

#include <cmath>
#include <cstddef>

#include "groupnorm/groupnorm.hpp"
#include "names.hpp"

namespace groupnorm::detail {

// Moments are computed per block of kBlockElems elements (one deviation pass around a sampled center, a
// second one only when the sample missed the mean), blocks are merged in index order into chunks of
// chunk_elems (plan-chosen, a multiple of kBlockElems), chunks are merged in index order into the slice.
// Nothing here depends on the thread count.
inline constexpr std::size_t kBlockElems = 4096;

struct moments {
  double count = 0;
  double mean = 0;
  double m2 = 0;  // sum of squared deviations from mean
};

// Chan et al. pairwise merge; a is the left (lower-index) part. Order matters for the bits: callers merge in
// index order only. static: kernel translation units are compiled with different target flags and must not
// share one out-of-line copy.
static inline void merge_into(moments& a, const moments& b) noexcept {
  if (b.count == 0) return;
  if (a.count == 0) {
    a = b;
    return;
  }
  const double n = a.count + b.count;
  if (!std::isfinite(a.mean) || !std::isfinite(b.mean)) [[unlikely]] {
    // Inf / NaN data: the mean of a sum with an infinite term is that infinity (NaN for +Inf with -Inf), as
    // in the reference; Chan's delta form would give Inf - Inf = NaN whenever the infinite part comes first.
    a.mean += b.mean;
    a.m2 += b.m2;
    a.count = n;
    return;
  }
  const double delta = b.mean - a.mean;
  a.mean += delta * (b.count / n);
  a.m2 += b.m2 + delta * delta * (a.count * b.count / n);
  a.count = n;
}

// Per-slice normalization constants, shared by the apply kernels.
struct slice_stats {
  double mean;
  double rstd;
};

// NCHW chunk: moments of the elements [0, n) of x (+ residual when non-null).
using chunk_moments_fn = moments (*)(const void* x, const void* residual, std::size_t n);

// NCHW, slices of at most kBlockElems elements: moments of `count` slices of n elements, `stride` elements
// apart, each bitwise equal to chunk_moments of that slice (several computed in lockstep for latency
// overlap).
using small_slices_moments_fn = void (*)(const void* x, const void* residual, std::size_t stride,
                                         std::size_t n, std::size_t count, moments* out);

// NCHW apply over slice elements [begin, end): channel c of the slice owns [c * spatial, (c + 1) * spatial).
// x, residual, y, sum point at the slice start; gamma / beta at the slice's first channel (or null).
// stream: write y with non-temporal stores (for outputs too large to stay in cache; same values, fewer
// reads).
using apply_fn = void (*)(const void* x, const void* residual, void* y, void* sum, std::size_t begin,
                          std::size_t end, std::size_t spatial, const float* gamma, const float* beta,
                          slice_stats stats, bool stream);

// Moments in double of `rows` rows of `width` elements, `stride` elements apart (x + residual rounded to
// float, as the other kernels see it), summed in row-major order: the exact path for a slice whose float
// lane sums cannot be trusted (see finish_slice).
using exact_moments_fn = moments (*)(const void* x, const void* residual, std::size_t rows, std::size_t width,
                                     std::size_t stride);

// NHWC (channels last): a sample is `spatial` rows of `channels` contiguous elements. Kernels vectorize
// across the channels of a row range: per-lane (channel) float accumulators over a block of `block_rows`
// rows, reduced to their group in channel order in double, block moments merged in row order (see
// lib/kernels/moments_nhwc.hpp). kNhwcTile bounds the lane arrays a kernel keeps on its stack: wider rows are
// processed in channel sub-tiles of whole groups (or, when one group is wider, in parts of one group merged
// in channel order).
inline constexpr std::size_t kNhwcTile = 2048;

struct nhwc_geometry {
  std::size_t channels;    // C: the row stride
  std::size_t cpg;         // channels per group
  std::size_t block_rows;  // rows per moments block (fixed by the shape)
  std::size_t lanes;  // > 0: whole rows packed into "virtual rows" of `lanes` (= lcm(C, 16)) lanes, lane l
                      // holding channel l % C (small C not a multiple of 16); 0: one lane per channel
};

// NHWC moments of groups [g0, g1) over `rows` rows starting at x (row 0, channel 0 of the row range).
// out[g - g0] receives the merge, in block order, of the blocks of block_rows rows.
using nhwc_moments_fn = void (*)(const void* x, const void* residual, std::size_t rows, std::size_t g0,
                                 std::size_t g1, const nhwc_geometry& geo, moments* out);

// NHWC apply over `rows` rows (pointers at row 0, channel 0 of the range), channels of groups [g0, g1);
// stats[g - g0] per group; gamma / beta indexed by absolute channel (or null).
using nhwc_apply_fn = void (*)(const void* x, const void* residual, void* y, void* sum, std::size_t rows,
                               std::size_t g0, std::size_t g1, const nhwc_geometry& geo, const float* gamma,
                               const float* beta, const slice_stats* stats, bool stream);

// The forward pass is two passes over the data. moments: the statistics of each (sample, group). apply:
// normalize, scale and shift, activate. A backward pass adds its kernels as another member of kernel_table.
struct moments_kernels {
  chunk_moments_fn nchw_chunk[kDtypes][2];                // [dtype][has residual]
  small_slices_moments_fn nchw_small_slices[kDtypes][2];  // [dtype][has residual]
  exact_moments_fn exact[kDtypes][2];                     // [dtype][has residual], either layout
  nhwc_moments_fn nhwc[kDtypes][2];                       // [dtype][has residual]
};

struct apply_kernels {
  apply_fn nchw[kDtypes][2][2][kActivations];       // [dtype][residual][write sum][activation]
  nhwc_apply_fn nhwc[kDtypes][2][2][kActivations];  // [dtype][residual][write sum][activation]
};

struct kernel_table {
  moments_kernels moments;
  apply_kernels apply;
};

}  // namespace groupnorm::detail
