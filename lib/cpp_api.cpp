// The C++ API surface: plan construction, typed forward and backward runs and the one-shot function.
#include <span>
#include <string>
#include <type_traits>

#include "plan/plan_state.hpp"
#include "schedule/backward.hpp"

namespace groupnorm {
namespace {

template <class T>
constexpr dtype dtype_of() {
  if constexpr (std::is_same_v<T, float>) return dtype::f32;
  if constexpr (std::is_same_v<T, f16>) return dtype::f16;
  if constexpr (std::is_same_v<T, bf16>) return dtype::bf16;
}

// An empty span is an absent buffer, whatever its data().
template <class T>
T* data_or_null(std::span<T> s) noexcept {
  return s.empty() ? nullptr : s.data();
}

}  // namespace

plan::plan(const problem& p) : state_(detail::make_shared_plan_state(p)) {}

template <class T>
void plan::run(const tensors<T>& t, tbb::task_arena* arena) const {
  const detail::plan_state& s = *state_;
  if (dtype_of<T>() != s.desc.data_type)
    throw invalid_argument(std::string("groupnorm: buffers are ") + to_string(dtype_of<T>()) + ", expected " +
                           to_string(s.desc.data_type) + " (the plan's data_type)");
  const detail::sized_buffers b{{t.x.data(), t.x.size()},
                                {t.y.data(), t.y.size()},
                                {t.gamma.data(), t.gamma.size()},
                                {t.beta.data(), t.beta.size()},
                                {t.residual.data(), t.residual.size()},
                                {t.sum.data(), t.sum.size()},
                                {t.mean.data(), t.mean.size()},
                                {t.rstd.data(), t.rstd.size()}};
  detail::run_call(s, detail::call_from_sized(b, arena));
}

template void plan::run<float>(const tensors<float>&, tbb::task_arena*) const;
template void plan::run<f16>(const tensors<f16>&, tbb::task_arena*) const;
template void plan::run<bf16>(const tensors<bf16>&, tbb::task_arena*) const;

void plan::run(std::span<const float> x, std::span<float> y, std::span<const float> gamma,
               std::span<const float> beta, tbb::task_arena* arena) const {
  tensors<float> t;
  t.x = x;
  t.y = y;
  t.gamma = gamma;
  t.beta = beta;
  run(t, arena);
}

void plan::run_inplace(std::span<float> xy, std::span<const float> gamma, std::span<const float> beta,
                       tbb::task_arena* arena) const {
  run(std::span<const float>(xy), xy, gamma, beta, arena);
}

template <class T>
void plan::run_backward(const backward_tensors<T>& t, tbb::task_arena* arena) const {
  const detail::plan_state& s = *state_;
  if (dtype_of<T>() != s.desc.data_type)
    throw invalid_argument(std::string("groupnorm: backward buffers are ") + to_string(dtype_of<T>()) +
                           ", expected " + to_string(s.desc.data_type) + " (the plan's data_type)");
  const detail::backward_buffers b{data_or_null(t.x),        data_or_null(t.dy),     data_or_null(t.gamma),
                                   data_or_null(t.beta),     data_or_null(t.mean),   data_or_null(t.rstd),
                                   data_or_null(t.dx),       data_or_null(t.dgamma), data_or_null(t.dbeta),
                                   data_or_null(t.workspace)};
  const detail::backward_sizes n{t.x.size(),     t.dy.size(),       t.gamma.size(), t.beta.size(),
                                 t.mean.size(),  t.rstd.size(),     t.dx.size(),    t.dgamma.size(),
                                 t.dbeta.size(), t.workspace.size()};
  detail::validate_backward(s, b, n);
  detail::execute_backward(s, b, arena);
}

template void plan::run_backward<float>(const backward_tensors<float>&, tbb::task_arena*) const;
template void plan::run_backward<f16>(const backward_tensors<f16>&, tbb::task_arena*) const;
template void plan::run_backward<bf16>(const backward_tensors<bf16>&, tbb::task_arena*) const;

std::size_t plan::backward_workspace_size() const noexcept {
  return detail::backward_workspace_doubles(*state_);
}

const problem& plan::description() const noexcept {
  return state_->desc;
}
std::size_t plan::element_count() const noexcept {
  return state_->total;
}
isa plan::selected_isa() const noexcept {
  return state_->family;
}

std::vector<float> group_normalization(std::span<const float> x, std::span<const std::size_t> shape,
                                       std::span<const float> gamma, std::span<const float> beta,
                                       std::size_t num_groups, float epsilon, tbb::task_arena* arena) {
  if (shape.size() < 2)
    throw invalid_argument("groupnorm: shape has rank " + std::to_string(shape.size()) +
                           ", expected at least 2 (batch, channels, spatial...)");
  problem p;
  p.batch = shape[0];
  p.channels = shape[1];
  p.spatial = 1;
  for (std::size_t i = 2; i < shape.size(); ++i) {
    if (__builtin_mul_overflow(p.spatial, shape[i], &p.spatial))
      throw invalid_argument("groupnorm: the spatial dims of shape overflow size_t");
  }
  p.num_groups = num_groups;
  p.epsilon = epsilon;
  const plan pl(p);
  if (x.size() != pl.element_count())
    throw invalid_argument("groupnorm: x has " + std::to_string(x.size()) + " elements, expected " +
                           std::to_string(pl.element_count()) + " (the product of shape)");
  std::vector<float> y(x.size());
  pl.run(x, y, gamma, beta, arena);
  return y;
}

}  // namespace groupnorm
