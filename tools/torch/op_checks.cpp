// Argument checks of the libtorch operators: ATen tensors mapped onto a groupnorm::problem, or a clear error.
#include "op_checks.hpp"

#include <string>

#include <ATen/ATen.h>

namespace groupnorm_torch {

const char* const kOp = "groupnorm::group_norm: ";

namespace {

// Memory ordered (N, spatial..., C) under the logical shape (N, C, spatial...): torch's channels_last (4-D)
// and channels_last_3d (5-D), and the same order at any other rank. Size-1 dims may carry any stride.
bool channels_last_dense(const at::Tensor& t) {
  const auto sizes = t.sizes();
  const auto strides = t.strides();
  std::int64_t expected = 1;
  const auto next = [&](std::int64_t d) {
    const bool ok = sizes[d] == 1 || strides[d] == expected;
    expected *= sizes[d];
    return ok;
  };
  bool dense = next(1);
  for (std::int64_t d = t.dim() - 1; d >= 2; --d) dense = next(d) && dense;
  return next(0) && dense;
}

void check_cpu(const at::Tensor& t, const char* name) {
  TORCH_CHECK_VALUE(t.device().is_cpu(), kOp, name, " is on ", t.device(), "; expected a CPU tensor");
}

}  // namespace

groupnorm::activation parse_activation(optional_name name) {
  if (!name) return groupnorm::activation::none;
  if (*name == "silu") return groupnorm::activation::silu;
  if (*name == "gelu") return groupnorm::activation::gelu;
  if (*name == "relu") return groupnorm::activation::relu;
  TORCH_CHECK_VALUE(false, kOp, "activation is \"", std::string(*name),
                    "\"; expected None, \"silu\", \"gelu\" or \"relu\"");
}

groupnorm::dtype storage_of(const at::Tensor& t, const char* name) {
  switch (t.scalar_type()) {
    case at::kFloat:
      return groupnorm::dtype::f32;
    case at::kHalf:
      return groupnorm::dtype::f16;
    case at::kBFloat16:
      return groupnorm::dtype::bf16;
    default:
      TORCH_CHECK_VALUE(false, kOp, name, " has dtype ", t.scalar_type(),
                        "; expected float32, float16 or bfloat16");
  }
}

groupnorm::layout layout_of(const at::Tensor& t, const char* name) {
  if (t.is_contiguous()) return groupnorm::layout::nchw;
  if (t.dim() >= 3 && channels_last_dense(t)) return groupnorm::layout::nhwc;
  TORCH_CHECK_VALUE(false, kOp, name, " has sizes ", t.sizes(), " and strides ", t.strides(),
                    "; expected a contiguous or channels_last tensor (call .contiguous() first)");
}

groupnorm::problem problem_of(const at::Tensor& x, std::int64_t num_groups, double eps,
                              optional_name activation, bool residual) {
  check_cpu(x, "input");
  TORCH_CHECK_VALUE(x.dim() >= 2, kOp, "input has shape ", x.sizes(), "; expected (N, C, *) with rank >= 2");
  TORCH_CHECK_VALUE(num_groups > 0 && x.size(1) % num_groups == 0, kOp, "num_groups is ", num_groups,
                    "; expected a positive divisor of the ", x.size(1), " channels");
  std::int64_t spatial = 1;
  for (std::int64_t d = 2; d < x.dim(); ++d) spatial *= x.size(d);
  groupnorm::problem p;
  p.batch = static_cast<std::size_t>(x.size(0));
  p.channels = static_cast<std::size_t>(x.size(1));
  p.spatial = static_cast<std::size_t>(spatial);
  p.num_groups = static_cast<std::size_t>(num_groups);
  p.epsilon = static_cast<float>(eps);
  p.memory_layout = layout_of(x, "input");
  p.data_type = storage_of(x, "input");
  p.fused_activation = parse_activation(activation);
  p.residual = residual;
  return p;
}

at::Tensor float_parameter(const optional_tensor& t, std::int64_t channels, const char* name) {
  if (!t || !t->defined()) return {};
  check_cpu(*t, name);
  TORCH_CHECK_VALUE(t->dim() == 1 && t->size(0) == channels, kOp, name, " has shape ", t->sizes(),
                    "; expected (", channels, ")");
  TORCH_CHECK_VALUE(at::isFloatingType(t->scalar_type()), kOp, name, " has dtype ", t->scalar_type(),
                    "; expected a floating dtype");
  return t->to(at::kFloat).contiguous();
}

at::Tensor checked_residual(const optional_tensor& r, const at::Tensor& x, groupnorm::layout layout) {
  if (!r || !r->defined()) return {};
  check_cpu(*r, "residual");
  TORCH_CHECK_VALUE(r->sizes() == x.sizes(), kOp, "residual has shape ", r->sizes(),
                    "; expected the input's ", x.sizes());
  TORCH_CHECK_VALUE(r->scalar_type() == x.scalar_type(), kOp, "residual has dtype ", r->scalar_type(),
                    "; expected the input's ", x.scalar_type());
  TORCH_CHECK_VALUE(layout_of(*r, "residual") == layout, kOp,
                    "residual and input have different memory formats (strides ", r->strides(), " and ",
                    x.strides(), ")");
  return *r;
}

at::Tensor empty_like_dense(const at::Tensor& x) {
  return at::empty_strided(x.sizes(), x.strides(), x.options());
}

}  // namespace groupnorm_torch
