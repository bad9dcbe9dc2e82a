// The C++ surface of the backward pass: plan::run_backward and its workspace size.
#include <span>
#include <string>
#include <type_traits>

#include "backward.hpp"

namespace groupnorm {
namespace {

template <class T>
constexpr dtype storage_of() {
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

template <class T>
void plan::run_backward(const backward_tensors<T>& t, tbb::task_arena* arena) const {
  const detail::plan_state& s = *state_;
  if (storage_of<T>() != s.desc.data_type)
    throw invalid_argument("groupnorm: backward buffers have dtype " +
                           std::to_string(static_cast<int>(storage_of<T>())) + ", expected " +
                           std::to_string(static_cast<int>(s.desc.data_type)) + " (the plan's data_type)");
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

}  // namespace groupnorm
