// Argument checks of the libtorch operators and their mapping of ATen tensors onto a groupnorm::problem.
#pragma once

#include <cstdint>

#include <groupnorm/groupnorm.hpp>

#include "op.hpp"

namespace groupnorm_torch {

// The "groupnorm::group_norm: " prefix of every error message.
extern const char* const kOp;

// Every check throws c10::ValueError (Python ValueError) naming the argument, its value and what was
// expected.
groupnorm::activation parse_activation(optional_name name);
groupnorm::dtype storage_of(const at::Tensor& t, const char* name);

// nchw for contiguous tensors, nhwc for channels-last dense ones (any rank >= 3); anything else is an error.
groupnorm::layout layout_of(const at::Tensor& t, const char* name);

// The problem of normalizing x (N, C, *) in num_groups groups.
groupnorm::problem problem_of(const at::Tensor& x, std::int64_t num_groups, double eps,
                              optional_name activation, bool residual);

// weight / bias as a contiguous float32 (C) tensor (undefined when absent); converted only when they are not
// float32 already (a module in float16 keeps float16 parameters).
at::Tensor float_parameter(const optional_tensor& t, std::int64_t channels, const char* name);

// The residual (undefined when absent) after checking it matches x in shape, dtype and memory format.
at::Tensor checked_residual(const optional_tensor& r, const at::Tensor& x, groupnorm::layout layout);

// An uninitialized tensor with x's sizes, strides and dtype (channels_last in, channels_last out).
at::Tensor empty_like_dense(const at::Tensor& x);

}  // namespace groupnorm_torch
