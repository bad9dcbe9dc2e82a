// A kernel family's table: every kernel of every pass, layout, dtype, residual mode and activation.
// Included once by each kernels_<family>.cpp, which compiles it with the family's target flags; everything
// has internal linkage (anonymous namespace), so no body compiled for one family leaks into another.
#pragma once

#include <cstddef>
#include <utility>

#include "kernels/apply_nchw.hpp"
#include "kernels/apply_nhwc.hpp"
#include "kernels/kernels.hpp"
#include "kernels/moments_exact.hpp"
#include "kernels/moments_nchw.hpp"
#include "kernels/moments_nhwc.hpp"
#include "names.hpp"

namespace groupnorm::detail {
namespace {

// The apply kernels of one (dtype, residual, write sum) row, by activation.
template <class T, bool Residual, bool WriteSum>
struct apply_row {
  template <activation A>
  static constexpr apply_fn nchw = apply<T, Residual, WriteSum, A>;
  template <activation A>
  static constexpr nhwc_apply_fn nhwc = nhwc_apply<T, Residual, WriteSum, A>;
};

// One entry per activation of lib/names.hpp: adding an activation there and in activate<> (activation.hpp)
// is all the table needs.
template <class T, bool Residual, bool WriteSum, std::size_t... I>
void fill_apply(kernel_table& t, int d, std::index_sequence<I...>) noexcept {
  using row = apply_row<T, Residual, WriteSum>;
  ((t.apply.nchw[d][Residual][WriteSum][I] = row::template nchw<kActivationNames[I].value>), ...);
  ((t.apply.nhwc[d][Residual][WriteSum][I] = row::template nhwc<kActivationNames[I].value>), ...);
}

template <class T>
void fill_dtype(kernel_table& t, dtype d) noexcept {
  const int k = static_cast<int>(d);
  t.moments.nchw_chunk[k][0] = chunk_moments<T, false>;
  t.moments.nchw_chunk[k][1] = chunk_moments<T, true>;
  t.moments.nchw_small_slices[k][0] = small_slices_moments<T, false>;
  t.moments.nchw_small_slices[k][1] = small_slices_moments<T, true>;
  t.moments.exact[k][0] = exact_moments<T, false>;
  t.moments.exact[k][1] = exact_moments<T, true>;
  t.moments.nhwc[k][0] = nhwc_moments<T, false>;
  t.moments.nhwc[k][1] = nhwc_moments<T, true>;
  constexpr auto activations = std::make_index_sequence<kActivations>{};
  fill_apply<T, false, false>(t, k, activations);
  fill_apply<T, true, false>(t, k, activations);
  fill_apply<T, true, true>(t, k, activations);
  // [false][true] (sum without residual) is rejected by the plan.
}

kernel_table make_table() noexcept {
  kernel_table t{};
  fill_dtype<float>(t, dtype::f32);
  fill_dtype<f16>(t, dtype::f16);
  fill_dtype<bf16>(t, dtype::bf16);
  return t;
}

}  // namespace
}  // namespace groupnorm::detail
