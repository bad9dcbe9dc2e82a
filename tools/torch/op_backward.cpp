// Backward CPU kernel of the libtorch operators: dx, dweight and dbias from the forward's saved statistics.
#include "op.hpp"

#include <atomic>
#include <cstddef>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <groupnorm/groupnorm.h>
#include <groupnorm/groupnorm.hpp>

#include "op_checks.hpp"
#include "plan_cache.hpp"

namespace groupnorm_torch {
namespace {

// grad_output in the storage dtype and memory order of input (a copy only when autograd hands over another
// format, e.g. the expanded ones of a sum()).
at::Tensor dense_like(const at::Tensor& grad, const at::Tensor& input, groupnorm::layout layout) {
  TORCH_CHECK_VALUE(grad.sizes() == input.sizes(), kOp, "grad_output has shape ", grad.sizes(),
                    "; expected the input's ", input.sizes());
  const bool same_order = grad.is_contiguous()
                              ? layout == groupnorm::layout::nchw
                              : grad.dim() >= 3 && layout == groupnorm::layout::nhwc &&
                                    grad.is_non_overlapping_and_dense() && grad.strides() == input.strides();
  if (same_order && grad.scalar_type() == input.scalar_type()) return grad;
  return empty_like_dense(input).copy_(grad);
}

// As the forward (op_forward.cpp), an NCHW backward of one sample on more than one thread runs on PyTorch's
// own threads, in units of consecutive groups: a channel's and a group's sums see the same additions, and
// with one sample dgamma / dbeta are those channel sums rounded, so the bits do not change. (With several
// samples dgamma adds the samples' sums in double before rounding, which separate units cannot reproduce.)
bool backward_on_torch_threads(const groupnorm::problem& p, const void* x, const void* dy, const float* gamma,
                               const float* beta, const float* mean, const float* rstd, void* dx,
                               float* dgamma, float* dbeta, const gn_options& o) {
  const int threads = at::get_num_threads();
  const std::size_t total = p.channels * p.spatial;
  if (p.batch != 1 || threads <= 1 || at::in_parallel_region() ||
      p.memory_layout != groupnorm::layout::nchw || total < kSplitMinElems)
    return false;
  const std::size_t parts = parts_per_sample(1, p.num_groups, threads);
  if (parts == 0) return false;
  try {
    (void)cached_plan(p);  // the whole problem is checked before any unit writes
  } catch (const groupnorm::invalid_argument& e) {
    TORCH_CHECK_VALUE(false, e.what());
  }
  const std::size_t channels = p.channels / parts, groups = p.num_groups / parts;
  const std::size_t bytes = channels * p.spatial * (p.data_type == groupnorm::dtype::f32 ? 4 : 2);
  gn_options unit = o;
  unit.num_threads = 1;
  std::atomic<bool> failed{false};
  at::parallel_for(0, static_cast<int64_t>(parts), 1, [&](int64_t begin, int64_t end) {
    for (auto k = static_cast<std::size_t>(begin); k < static_cast<std::size_t>(end); ++k) {
      const std::size_t c = k * channels, g = k * groups;
      auto channel_of = [&](auto* base) { return base ? base + c : base; };
      const gn_status st = gn_group_norm_backward_ex(
          static_cast<const char*>(x) + k * bytes, static_cast<const char*>(dy) + k * bytes,
          channel_of(gamma), channel_of(beta), mean + g, rstd + g,
          dx ? static_cast<char*>(dx) + k * bytes : nullptr, channel_of(dgamma), channel_of(dbeta), 1,
          channels, p.spatial, groups, p.epsilon, &unit);
      if (st != GN_OK) failed = true;
    }
  });
  TORCH_CHECK(!failed, kOp, "internal error: a backward unit was rejected after the whole problem passed");
  return true;
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> group_norm_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& input, int64_t num_groups, const optional_tensor& weight,
    const optional_tensor& bias, const at::Tensor& mean, const at::Tensor& rstd, double eps,
    optional_name activation, std::array<bool, 3> output_mask) {
  const groupnorm::problem p = problem_of(input, num_groups, eps, activation, false);
  const std::int64_t N = input.size(0), C = input.size(1), G = num_groups;
  const at::Tensor gamma = float_parameter(weight, C, "weight");
  const at::Tensor beta = float_parameter(bias, C, "bias");
  for (const at::Tensor* s : {&mean, &rstd})
    TORCH_CHECK_VALUE(s->scalar_type() == at::kFloat && s->is_contiguous() && s->numel() == N * G, kOp,
                      s == &mean ? "mean" : "rstd", " has shape ", s->sizes(), " and dtype ",
                      s->scalar_type(), "; expected ", N * G, " contiguous float32 values");
  const at::Tensor dy = dense_like(grad_output, input, p.memory_layout);
  const auto parameter_dtype = weight && weight->defined() ? weight->scalar_type() : at::kFloat;

  at::Tensor dx = output_mask[0] ? empty_like_dense(input) : at::Tensor();
  const auto float_options = input.options().dtype(at::kFloat);
  at::Tensor dgamma = output_mask[1] ? at::empty({C}, float_options) : at::Tensor();
  at::Tensor dbeta = output_mask[2] ? at::empty({C}, float_options) : at::Tensor();
  if (!output_mask[0] && !output_mask[1] && !output_mask[2]) return {};
  if (input.numel() == 0) {  // nothing was normalized: every gradient is an empty or zero sum
    if (dgamma.defined()) dgamma.zero_();
    if (dbeta.defined()) dbeta.zero_();
    return {dx, dgamma.defined() ? dgamma.to(parameter_dtype) : dgamma,
            dbeta.defined() ? dbeta.to(parameter_dtype) : dbeta};
  }
  const auto float_or_null = [](const at::Tensor& t) { return t.defined() ? t.data_ptr<float>() : nullptr; };
  gn_options o;
  gn_options_init(&o);
  o.layout = static_cast<gn_layout>(p.memory_layout);
  o.dtype = static_cast<gn_dtype>(p.data_type);
  o.activation = static_cast<gn_activation>(p.fused_activation);
  o.num_threads = at::get_num_threads();
  void* const dx_data = dx.defined() ? dx.data_ptr() : nullptr;
  if (!backward_on_torch_threads(p, input.data_ptr(), dy.data_ptr(), float_or_null(gamma),
                                 float_or_null(beta), mean.data_ptr<float>(), rstd.data_ptr<float>(), dx_data,
                                 float_or_null(dgamma), float_or_null(dbeta), o)) {
    const gn_status status = gn_group_norm_backward_ex(
        input.data_ptr(), dy.data_ptr(), float_or_null(gamma), float_or_null(beta), mean.data_ptr<float>(),
        rstd.data_ptr<float>(), dx_data, float_or_null(dgamma), float_or_null(dbeta), p.batch, p.channels,
        p.spatial, p.num_groups, p.epsilon, &o);
    TORCH_CHECK_VALUE(status == GN_OK, gn_last_error());
  }
  if (dgamma.defined()) dgamma = dgamma.to(parameter_dtype);
  if (dbeta.defined()) dbeta = dbeta.to(parameter_dtype);
  return {dx, dgamma, dbeta};
}

}  // namespace groupnorm_torch
