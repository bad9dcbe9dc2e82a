// Forward CPU kernels of the libtorch operators: ATen tensors run through cached groupnorm plans, without
// copies.
#include "op.hpp"

#include <cstddef>
#include <span>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <groupnorm/groupnorm.hpp>

#include "op_checks.hpp"
#include "plan_cache.hpp"

namespace groupnorm_torch {
namespace {

template <class T>
std::span<T> span_of(const at::Tensor& t) {
  if (!t.defined()) return {};
  return {static_cast<T*>(t.data_ptr()), static_cast<std::size_t>(t.numel())};
}

template <class T>
void run_plan(const groupnorm::problem& p, const at::Tensor& x, const at::Tensor& y, const at::Tensor& gamma,
              const at::Tensor& beta, const at::Tensor& residual, const at::Tensor& sum,
              const at::Tensor& mean, const at::Tensor& rstd) {
  const groupnorm::tensors<T> t{.x = span_of<const T>(x),
                                .y = span_of<T>(y),
                                .gamma = span_of<const float>(gamma),
                                .beta = span_of<const float>(beta),
                                .residual = span_of<const T>(residual),
                                .sum = span_of<T>(sum),
                                .mean = span_of<float>(mean),
                                .rstd = span_of<float>(rstd)};
  cached_plan(p).run(t, arena_for_threads(at::get_num_threads()));
}

// Runs the forward; mean / rstd / sum are filled when defined.
void run_forward(const groupnorm::problem& p, const at::Tensor& x, const at::Tensor& y,
                 const at::Tensor& gamma, const at::Tensor& beta, const at::Tensor& residual,
                 const at::Tensor& sum, const at::Tensor& mean, const at::Tensor& rstd) {
  try {
    switch (p.data_type) {
      case groupnorm::dtype::f32:
        return run_plan<float>(p, x, y, gamma, beta, residual, sum, mean, rstd);
      case groupnorm::dtype::f16:
        return run_plan<groupnorm::f16>(p, x, y, gamma, beta, residual, sum, mean, rstd);
      case groupnorm::dtype::bf16:
        return run_plan<groupnorm::bf16>(p, x, y, gamma, beta, residual, sum, mean, rstd);
    }
  } catch (const groupnorm::invalid_argument& e) {
    TORCH_CHECK_VALUE(false, e.what());
  }
}

// float32 GELU and ReLU run as ATen's vectorized in-place kernels on y rather than the library's fused
// epilogue: GELU's rounds about once but costs 4.6 ns per element with AVX2. SiLU stays fused (2 ulp, about
// 0.8 ns per element): on 1x320x64x64 it beat normalization plus silu_ at 1 and 2 threads (docs/torch.md).
// 16-bit storage keeps every fused epilogue, which rounds once instead of twice.
groupnorm::activation split_epilogue(groupnorm::problem& p) {
  const groupnorm::activation a = p.fused_activation;
  if (p.data_type != groupnorm::dtype::f32 || a == groupnorm::activation::silu)
    return groupnorm::activation::none;
  p.fused_activation = groupnorm::activation::none;
  return a;
}

void apply_epilogue(groupnorm::activation a, at::Tensor& y) {
  switch (a) {
    case groupnorm::activation::none:
      return;
    case groupnorm::activation::relu:
      at::relu_(y);
      return;
    case groupnorm::activation::silu:
      at::silu_(y);
      return;
    case groupnorm::activation::gelu:
      at::gelu_(y);
      return;
  }
}

}  // namespace

at::Tensor group_norm_cpu(const at::Tensor& input, int64_t num_groups, const optional_tensor& weight,
                          const optional_tensor& bias, double eps, optional_name activation,
                          const optional_tensor& residual) {
  const bool has_residual = residual && residual->defined();
  groupnorm::problem p = problem_of(input, num_groups, eps, activation, has_residual);
  const groupnorm::activation epilogue = split_epilogue(p);
  const at::Tensor gamma = float_parameter(weight, input.size(1), "weight");
  const at::Tensor beta = float_parameter(bias, input.size(1), "bias");
  const at::Tensor r = checked_residual(residual, input, p.memory_layout);
  at::Tensor y = empty_like_dense(input);
  run_forward(p, input, y, gamma, beta, r, {}, {}, {});
  apply_epilogue(epilogue, y);
  return y;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> group_norm_forward_cpu(
    const at::Tensor& input, int64_t num_groups, const optional_tensor& weight, const optional_tensor& bias,
    double eps, optional_name activation, const optional_tensor& residual) {
  const bool has_residual = residual && residual->defined();
  groupnorm::problem p = problem_of(input, num_groups, eps, activation, has_residual);
  const groupnorm::activation epilogue = split_epilogue(p);
  const at::Tensor gamma = float_parameter(weight, input.size(1), "weight");
  const at::Tensor beta = float_parameter(bias, input.size(1), "bias");
  const at::Tensor r = checked_residual(residual, input, p.memory_layout);
  at::Tensor y = empty_like_dense(input);
  at::Tensor sum = has_residual ? empty_like_dense(input) : at::Tensor();
  // Zero-filled so an empty input (nothing normalized) still returns defined statistics.
  at::Tensor mean = at::zeros({input.size(0), num_groups}, input.options().dtype(at::kFloat));
  at::Tensor rstd = at::zeros({input.size(0), num_groups}, input.options().dtype(at::kFloat));
  run_forward(p, input, y, gamma, beta, r, sum, mean, rstd);
  apply_epilogue(epilogue, y);
  return {y, mean, rstd, sum};
}

}  // namespace groupnorm_torch
