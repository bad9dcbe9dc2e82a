// The CPU kernels of the libtorch operators groupnorm::group_norm, group_norm_forward and
// group_norm_backward.
#pragma once

#include <array>
#include <cstdint>
#include <tuple>

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>
#include <c10/util/string_view.h>

namespace groupnorm_torch {

using optional_tensor = c10::optional<at::Tensor>;
using optional_name = c10::optional<c10::string_view>;

// y = act(GroupNorm(x [+ residual])). x: CPU float32 / float16 / bfloat16, shape (N, C, *), contiguous or
// channels-last dense (read in place, no copy); y has x's strides. weight / bias: (C) of any floating dtype.
// activation: none, "silu", "gelu" (erf form) or "relu". Errors are c10::ValueError naming the argument.
at::Tensor group_norm_cpu(const at::Tensor& input, int64_t num_groups, const optional_tensor& weight,
                          const optional_tensor& bias, double eps, optional_name activation,
                          const optional_tensor& residual);

// The same, also returning what the backward needs: mean and rstd (N, num_groups, float32) and, with a
// residual, the normalized input x + residual (undefined without one).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> group_norm_forward_cpu(
    const at::Tensor& input, int64_t num_groups, const optional_tensor& weight, const optional_tensor& bias,
    double eps, optional_name activation, const optional_tensor& residual);

// (grad_input, grad_weight, grad_bias), each computed only where output_mask says so (undefined otherwise).
// input is the tensor that was normalized (x + residual with a residual); mean and rstd are the forward's.
// grad_weight and grad_bias have weight's dtype (float32 without a weight).
std::tuple<at::Tensor, at::Tensor, at::Tensor> group_norm_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& input, int64_t num_groups, const optional_tensor& weight,
    const optional_tensor& bias, const at::Tensor& mean, const at::Tensor& rstd, double eps,
    optional_name activation, std::array<bool, 3> output_mask);

}  // namespace groupnorm_torch
