// Backward test helpers: the float64 reference (tools/reference_backward.hpp), layout transposes, and a
// helper that runs plan::run_backward.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include <oneapi/tbb/task_arena.h>

#include "groupnorm/groupnorm.hpp"
#include "reference_backward.hpp"
#include "test_util.hpp"

namespace gn_test::bw {

using namespace groupnorm::reference;

// NCHW index of NHWC element j (and back), for layout tests.
inline std::size_t nchw_index(std::size_t j, std::size_t C, std::size_t S) {
  const std::size_t c = j % C, i = j / C % S, n = j / C / S;
  return (n * C + c) * S + i;
}

template <class V>
V to_nchw(const V& v, std::size_t C, std::size_t S) {
  V out(v.size());
  for (std::size_t j = 0; j < v.size(); ++j) out[nchw_index(j, C, S)] = v[j];
  return out;
}
template <class V>
V to_nhwc(const V& v, std::size_t C, std::size_t S) {
  V out(v.size());
  for (std::size_t j = 0; j < v.size(); ++j) out[j] = v[nchw_index(j, C, S)];
  return out;
}

// Outputs of one run_backward.
template <class T>
struct result {
  std::vector<T> dx;
  std::vector<float> dgamma, dbeta;
};

// Runs the backward of plan p with every gradient requested (mean / rstd empty: recomputed).
template <class T>
result<T> run(const groupnorm::problem& p, const std::vector<T>& x, const std::vector<T>& dy,
              const std::vector<float>& gamma, const std::vector<float>& beta,
              const std::vector<float>& mean = {}, const std::vector<float>& rstd = {},
              tbb::task_arena* arena = nullptr) {
  const groupnorm::plan pl(p);
  result<T> r{std::vector<T>(x.size(), storage<T>::from(-777.0f)), std::vector<float>(p.channels, -777.0f),
              std::vector<float>(p.channels, -777.0f)};
  std::vector<double> workspace(pl.backward_workspace_size());
  pl.run_backward(groupnorm::backward_tensors<T>{.x = x,
                                                 .dy = dy,
                                                 .gamma = gamma,
                                                 .beta = beta,
                                                 .mean = mean,
                                                 .rstd = rstd,
                                                 .dx = r.dx,
                                                 .dgamma = r.dgamma,
                                                 .dbeta = r.dbeta,
                                                 .workspace = workspace},
                  arena);
  return r;
}

}  // namespace gn_test::bw
