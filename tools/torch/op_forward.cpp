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

template <class S>
S part_of(S s, std::size_t offset, std::size_t count) {
  return s.empty() ? s : s.subspan(offset, count);
}

// PyTorch's intra-op pool (OpenMP) spins for a while after each of its parallel regions; a oneTBB worker
// woken for this run would share a core with a spinning OpenMP thread and the run would not speed up from a
// second thread (measured in tools/bench_e2e.py, docs/torch.md). So an NCHW run on more than one thread is
// cut into units of one sample's consecutive groups, which are contiguous in x, y, residual, sum, gamma,
// beta, mean and rstd, and PyTorch's own threads run them (at::parallel_for), each unit as its own plan on
// the calling thread. A slice's reduction tree depends on its size only, so the bits are those of the whole
// plan.
template <class T>
bool run_on_torch_threads(const groupnorm::problem& p, const groupnorm::tensors<T>& t) {
  const int threads = at::get_num_threads();
  const std::size_t total = p.batch * p.channels * p.spatial;
  if (threads <= 1 || at::in_parallel_region() || p.memory_layout != groupnorm::layout::nchw ||
      total < kSplitMinElems)
    return false;
  const std::size_t parts = parts_per_sample(p.batch, p.num_groups, threads);
  if (parts == 0) return false;
  groupnorm::problem unit = p;
  unit.batch = 1;
  unit.channels = p.channels / parts;
  unit.num_groups = p.num_groups / parts;
  const groupnorm::plan pl = cached_plan(unit);
  tbb::task_arena* const calling_thread = arena_for_threads(1);
  const std::size_t elems = unit.channels * p.spatial;
  at::parallel_for(0, static_cast<int64_t>(p.batch * parts), 1, [&](int64_t begin, int64_t end) {
    for (auto u = static_cast<std::size_t>(begin); u < static_cast<std::size_t>(end); ++u) {
      const std::size_t k = u % parts, channel = k * unit.channels;
      const std::size_t at = (u / parts * p.channels + channel) * p.spatial;
      const std::size_t group = u / parts * p.num_groups + k * unit.num_groups;
      const groupnorm::tensors<T> part{.x = part_of(t.x, at, elems),
                                       .y = part_of(t.y, at, elems),
                                       .gamma = part_of(t.gamma, channel, unit.channels),
                                       .beta = part_of(t.beta, channel, unit.channels),
                                       .residual = part_of(t.residual, at, elems),
                                       .sum = part_of(t.sum, at, elems),
                                       .mean = part_of(t.mean, group, unit.num_groups),
                                       .rstd = part_of(t.rstd, group, unit.num_groups)};
      pl.run(part, calling_thread);
    }
  });
  return true;
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
  const groupnorm::plan pl = cached_plan(p);  // validates the whole problem before any unit writes
  if (run_on_torch_threads(p, t)) return;
  pl.run(t, arena_for_threads(at::get_num_threads()));
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
