// Float64 reference GroupNorm (NCHW), the straightforward two-pass definition. Shared by the bench's
// verification and the test suite; deliberately independent of the library's code.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include "groupnorm/groupnorm.hpp"

namespace groupnorm::reference {

// The fused activation in float64 (gelu: the erf form), applied to the reference before comparing.
inline double act64(activation a, double z) {
  switch (a) {
    case activation::relu:
      return z > 0 ? z : 0.0;
    case activation::silu:
      return z / (1.0 + std::exp(-z));
    case activation::gelu:
      return 0.5 * z * std::erfc(-z / std::sqrt(2.0));
    default:
      return z;
  }
}

struct stats {
  double mean;
  double var;
};

// y[i] = gamma[c] * (x - mean) / sqrt(var + eps) + beta[c]; gamma / beta may be empty (1 / 0).
// Returns (mean, var) per (sample, group) in `out_stats` when non-null.
template <class In>
std::vector<double> group_norm(const In* x, std::size_t batch, std::size_t channels, std::size_t spatial,
                               std::size_t groups, double eps, const std::vector<float>& gamma = {},
                               const std::vector<float>& beta = {}, std::vector<stats>* out_stats = nullptr) {
  const std::size_t cpg = channels / groups, slice = cpg * spatial;
  std::vector<double> y(batch * channels * spatial);
  if (out_stats) out_stats->clear();
  for (std::size_t n = 0; n < batch; ++n) {
    for (std::size_t g = 0; g < groups; ++g) {
      const std::size_t base = (n * groups + g) * slice;
      double sum = 0;
      for (std::size_t i = 0; i < slice; ++i) sum += static_cast<double>(x[base + i]);
      const double mean = slice ? sum / static_cast<double>(slice) : 0.0;
      double sq = 0;
      for (std::size_t i = 0; i < slice; ++i) {
        const double d = static_cast<double>(x[base + i]) - mean;
        sq += d * d;
      }
      const double var = slice ? sq / static_cast<double>(slice) : 0.0;
      if (out_stats) out_stats->push_back({mean, var});
      const double rstd = 1.0 / std::sqrt(var + eps);
      for (std::size_t i = 0; i < slice; ++i) {
        const std::size_t c = g * cpg + i / spatial;
        const double gm = gamma.empty() ? 1.0 : gamma[c], bt = beta.empty() ? 0.0 : beta[c];
        y[base + i] = gm * (static_cast<double>(x[base + i]) - mean) * rstd + bt;
      }
    }
  }
  return y;
}

}  // namespace groupnorm::reference
