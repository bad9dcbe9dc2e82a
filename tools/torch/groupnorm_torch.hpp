// C++ entry to the libtorch operator groupnorm::group_norm (link libgroupnorm_torch, which registers it).
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/util/Optional.h>
#include <c10/util/string_view.h>

namespace groupnorm_torch {

// activation(GroupNorm(input + residual)) through PyTorch's dispatcher, so autograd, inference mode and
// profiling see it like any ATen operator. activation: none, "silu", "gelu" (erf form) or "relu". input: CPU
// float32 / float16 / bfloat16, contiguous or channels_last; weight and bias: (C) or absent.
inline at::Tensor group_norm(const at::Tensor& input, std::int64_t num_groups,
                             const c10::optional<at::Tensor>& weight = {},
                             const c10::optional<at::Tensor>& bias = {}, double eps = 1e-5,
                             c10::optional<c10::string_view> activation = {},
                             const c10::optional<at::Tensor>& residual = {}) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("groupnorm::group_norm", "")
          .typed<at::Tensor(const at::Tensor&, std::int64_t, const c10::optional<at::Tensor>&,
                            const c10::optional<at::Tensor>&, double, c10::optional<c10::string_view>,
                            const c10::optional<at::Tensor>&)>();
  return op.call(input, num_groups, weight, bias, eps, activation, residual);
}

}  // namespace groupnorm_torch
