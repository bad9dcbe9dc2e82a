// Float64 reference of the GroupNorm backward (NCHW, the formulas of docs/backward.md) and the float64
// forward it is checked against by finite differences. Shared by the test suite and `groupnorm bench
// --direction backward`; deliberately independent of the library's code.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include "groupnorm/groupnorm.hpp"
#include "reference.hpp"

namespace groupnorm::reference {

using groupnorm::activation;

inline double act_grad64(activation a, double z) {
  constexpr double inv_sqrt_2pi = 0.398942280401432678;
  switch (a) {
    case activation::relu:
      return z > 0 ? 1.0 : 0.0;
    case activation::silu: {
      const double s = 1.0 / (1.0 + std::exp(-z));
      return s * (1.0 + z * (1.0 - s));
    }
    case activation::gelu:
      return 0.5 * std::erfc(-z / std::sqrt(2.0)) + z * std::exp(-0.5 * z * z) * inv_sqrt_2pi;
    default:
      return 1.0;
  }
}

// A problem in NCHW terms; x, dy, gamma, beta as doubles (already rounded to their storage type).
struct problem64 {
  std::size_t batch, channels, spatial, groups;
  double eps;
  activation act;
  std::vector<double> gamma, beta;  // empty: 1 and 0
  double gamma_at(std::size_t c) const { return gamma.empty() ? 1.0 : gamma[c]; }
  double beta_at(std::size_t c) const { return beta.empty() ? 0.0 : beta[c]; }
};

// Forward y = act(gamma xhat + beta), NCHW.
inline std::vector<double> forward64(const problem64& p, const std::vector<double>& x) {
  const std::size_t cpg = p.channels / p.groups, m = cpg * p.spatial;
  std::vector<double> y(x.size());
  for (std::size_t s = 0; s < p.batch * p.groups; ++s) {
    double mean = 0, var = 0;
    for (std::size_t i = 0; i < m; ++i) mean += x[s * m + i];
    mean /= static_cast<double>(m);
    for (std::size_t i = 0; i < m; ++i) var += (x[s * m + i] - mean) * (x[s * m + i] - mean);
    const double rstd = 1.0 / std::sqrt(var / static_cast<double>(m) + p.eps);
    for (std::size_t i = 0; i < m; ++i) {
      const std::size_t c = (s % p.groups) * cpg + i / p.spatial;
      y[s * m + i] = act64(p.act, p.gamma_at(c) * (x[s * m + i] - mean) * rstd + p.beta_at(c));
    }
  }
  return y;
}

// Gradients and, per output, a magnitude bound of the float computation (sum of the absolute values of the
// terms that make it up), which the tolerances scale with.
struct grads64 {
  std::vector<double> dx, dgamma, dbeta;
  std::vector<double> dx_scale, dgamma_scale, dbeta_scale;
};

// relu_side(i, z): whether relu passes the gradient at element i (z > 0 by default). A test comparing
// against float kernels passes the float z's sign, since a z within rounding of 0 may land on either side.
template <class Side>
grads64 backward64(const problem64& p, const std::vector<double>& x, const std::vector<double>& dy,
                   Side&& relu_side) {
  const std::size_t cpg = p.channels / p.groups, m = cpg * p.spatial, C = p.channels;
  grads64 r;
  r.dx.assign(x.size(), 0.0);
  r.dx_scale.assign(x.size(), 0.0);
  r.dgamma.assign(C, 0.0);
  r.dbeta.assign(C, 0.0);
  r.dgamma_scale.assign(C, 0.0);
  r.dbeta_scale.assign(C, 0.0);
  std::vector<double> dz(m), xhat(m);
  for (std::size_t s = 0; s < p.batch * p.groups; ++s) {
    const double* xs = x.data() + s * m;
    double mean = 0, var = 0;
    for (std::size_t i = 0; i < m; ++i) mean += xs[i];
    mean /= static_cast<double>(m);
    for (std::size_t i = 0; i < m; ++i) var += (xs[i] - mean) * (xs[i] - mean);
    const double rstd = 1.0 / std::sqrt(var / static_cast<double>(m) + p.eps);
    double mean_g = 0, mean_gx = 0, abs_g = 0, abs_gx = 0;
    for (std::size_t i = 0; i < m; ++i) {
      const std::size_t c = (s % p.groups) * cpg + i / p.spatial;
      xhat[i] = (xs[i] - mean) * rstd;
      const double z = p.gamma_at(c) * xhat[i] + p.beta_at(c);
      const double d =
          p.act == activation::relu ? (relu_side(s * m + i, z) ? 1.0 : 0.0) : act_grad64(p.act, z);
      dz[i] = dy[s * m + i] * d;
      const double g = p.gamma_at(c) * dz[i];
      mean_g += g, mean_gx += g * xhat[i], abs_g += std::fabs(g), abs_gx += std::fabs(g * xhat[i]);
      r.dbeta[c] += dz[i], r.dgamma[c] += dz[i] * xhat[i];
      r.dbeta_scale[c] += std::fabs(dz[i]), r.dgamma_scale[c] += std::fabs(dz[i] * xhat[i]);
    }
    const double inv_m = 1.0 / static_cast<double>(m);
    mean_g *= inv_m, mean_gx *= inv_m, abs_g *= inv_m, abs_gx *= inv_m;
    for (std::size_t i = 0; i < m; ++i) {
      const std::size_t c = (s % p.groups) * cpg + i / p.spatial;
      const double g = p.gamma_at(c) * dz[i];
      r.dx[s * m + i] = rstd * (g - mean_g - xhat[i] * mean_gx);
      r.dx_scale[s * m + i] = rstd * (std::fabs(g) + abs_g + std::fabs(xhat[i]) * abs_gx);
    }
  }
  return r;
}

inline grads64 backward64(const problem64& p, const std::vector<double>& x, const std::vector<double>& dy) {
  return backward64(p, x, dy, [](std::size_t, double z) { return z > 0; });
}

}  // namespace groupnorm::reference
