// Registers the groupnorm:: operators with PyTorch's dispatcher: schemas, CPU kernels and the autograd
// kernel.
#include <string>

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include "op.hpp"

namespace groupnorm_torch {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

bool requires_grad(const optional_tensor& t) {
  return t && t->defined() && t->requires_grad();
}

// group_norm's differentiable form: the forward saves the normalized input (x + residual when there is one)
// and the statistics, so the backward reads them instead of recomputing. First-order only.
class GroupNormFunction : public torch::autograd::Function<GroupNormFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, int64_t num_groups,
                            const optional_tensor& weight, const optional_tensor& bias, double eps,
                            optional_name activation, const optional_tensor& residual) {
    static const auto op = c10::Dispatcher::singleton()
                               .findSchemaOrThrow("groupnorm::group_norm_forward", "")
                               .typed<decltype(group_norm_forward_cpu)>();
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [y, mean, rstd, sum] = op.call(input, num_groups, weight, bias, eps, activation, residual);
    const bool has_residual = residual && residual->defined();
    ctx->save_for_backward(
        {has_residual ? sum : input, weight.value_or(at::Tensor()), bias.value_or(at::Tensor()), mean, rstd});
    ctx->saved_data["num_groups"] = num_groups;
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["activation"] = activation ? c10::IValue(std::string(*activation)) : c10::IValue();
    ctx->saved_data["input_grad"] = input.requires_grad() || requires_grad(residual);
    ctx->saved_data["weight_grad"] = requires_grad(weight);
    ctx->saved_data["bias_grad"] = requires_grad(bias);
    ctx->saved_data["residual_grad"] = requires_grad(residual);
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    static const auto op = c10::Dispatcher::singleton()
                               .findSchemaOrThrow("groupnorm::group_norm_backward", "")
                               .typed<decltype(group_norm_backward_cpu)>();
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor& grad = grad_outputs[0];
    const auto flag = [&](const char* name) { return ctx->saved_data[name].toBool(); };
    const std::array<bool, 3> mask{flag("input_grad"), flag("weight_grad"), flag("bias_grad")};
    if (!grad.defined() || !(mask[0] || mask[1] || mask[2])) return variable_list(7);
    const c10::IValue& act = ctx->saved_data["activation"];
    const std::string act_name = act.isNone() ? std::string() : act.toStringRef();
    const optional_name activation = act.isNone() ? optional_name() : optional_name(act_name);
    const auto optional_of = [](const at::Tensor& t) {
      return t.defined() ? optional_tensor(t) : optional_tensor();
    };
    auto [dx, dweight, dbias] = op.call(grad, saved[0], ctx->saved_data["num_groups"].toInt(),
                                        optional_of(saved[1]), optional_of(saved[2]), saved[3], saved[4],
                                        ctx->saved_data["eps"].toDouble(), activation, mask);
    const at::Tensor dresidual = flag("residual_grad") ? dx : at::Tensor();
    return {dx, at::Tensor(), dweight, dbias, at::Tensor(), at::Tensor(), dresidual};
  }
};

at::Tensor group_norm_autograd(const at::Tensor& input, int64_t num_groups, const optional_tensor& weight,
                               const optional_tensor& bias, double eps, optional_name activation,
                               const optional_tensor& residual) {
  const bool needs_graph = at::GradMode::is_enabled() && (input.requires_grad() || requires_grad(weight) ||
                                                          requires_grad(bias) || requires_grad(residual));
  if (needs_graph)
    return GroupNormFunction::apply(input, num_groups, weight, bias, eps, activation, residual);
  // Nothing to differentiate: the plain forward, with no statistics or sum kept.
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("groupnorm::group_norm", "")
                             .typed<decltype(group_norm_cpu)>();
  at::AutoDispatchBelowADInplaceOrView guard;
  return op.call(input, num_groups, weight, bias, eps, activation, residual);
}

}  // namespace
}  // namespace groupnorm_torch

TORCH_LIBRARY(groupnorm, m) {
  m.def(
      "group_norm(Tensor input, int num_groups, Tensor? weight=None, Tensor? bias=None, float eps=1e-05, "
      "str? activation=None, Tensor? residual=None) -> Tensor");
  m.def(
      "group_norm_forward(Tensor input, int num_groups, Tensor? weight, Tensor? bias, float eps, "
      "str? activation, Tensor? residual) -> (Tensor output, Tensor mean, Tensor rstd, Tensor sum)");
  m.def(
      "group_norm_backward(Tensor grad_output, Tensor input, int num_groups, Tensor? weight, Tensor? bias, "
      "Tensor mean, Tensor rstd, float eps, str? activation, bool[3] output_mask) -> (Tensor, Tensor, "
      "Tensor)");
}

TORCH_LIBRARY_IMPL(groupnorm, CPU, m) {
  m.impl("group_norm", groupnorm_torch::group_norm_cpu);
  m.impl("group_norm_forward", groupnorm_torch::group_norm_forward_cpu);
  m.impl("group_norm_backward", groupnorm_torch::group_norm_backward_cpu);
}

TORCH_LIBRARY_IMPL(groupnorm, Autograd, m) {
  m.impl("group_norm", groupnorm_torch::group_norm_autograd);
}
