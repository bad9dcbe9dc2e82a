// Backward pass against the float64 reference (itself checked against finite differences of the float64
// forward): every layout, storage type and activation, on shapes of ranks 3-5, G = 1 and G = C.
#include <cmath>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "backward_util.hpp"

namespace {

using gn_test::shape;
using groupnorm::activation;
using groupnorm::layout;

constexpr activation kActivations[] = {activation::none, activation::relu, activation::silu,
                                       activation::gelu};

const char* name_of(activation a) {
  const char* names[] = {"none", "relu", "silu", "gelu"};
  return names[static_cast<int>(a)];
}

std::vector<double> widen(const std::vector<float>& v) {
  return {v.begin(), v.end()};
}

TEST_CASE("backward float64 reference equals central finite differences of the float64 forward") {
  for (activation a : kActivations) {
    CAPTURE(name_of(a));
    gn_test::bw::problem64 p{
        2, 6, 5, 3, 1e-3, a, widen(gn_test::normal(6, 3, 1.0, 0.5)), widen(gn_test::normal(6, 4, 0.0, 0.3))};
    const std::vector<double> x = widen(gn_test::normal(60, 1, 0.3, 1.3));
    const std::vector<double> dy = widen(gn_test::normal(60, 2));
    const gn_test::bw::grads64 g = gn_test::bw::backward64(p, x, dy);
    auto loss = [&](const gn_test::bw::problem64& q, const std::vector<double>& v) {
      const std::vector<double> y = gn_test::bw::forward64(q, v);
      double l = 0;
      for (std::size_t i = 0; i < y.size(); ++i) l += dy[i] * y[i];
      return l;
    };
    // h = 1e-6: the truncation error of a central difference is O(h^2) ~ 1e-12 and the cancellation error
    // ~ 1e-16 |L| / h ~ 1e-9, both far inside 1e-6 (relu's kink is not within h of any z of this data).
    constexpr double h = 1e-6, tol = 1e-6;
    for (std::size_t i = 0; i < x.size(); ++i) {
      std::vector<double> up = x, down = x;
      up[i] += h, down[i] -= h;
      const double fd = (loss(p, up) - loss(p, down)) / (2 * h);
      CHECK(std::fabs(fd - g.dx[i]) <= tol * (1 + std::fabs(g.dx[i])));
    }
    for (std::size_t c = 0; c < p.channels; ++c) {
      gn_test::bw::problem64 up = p, down = p;
      up.gamma[c] += h, down.gamma[c] -= h;
      CHECK(std::fabs((loss(up, x) - loss(down, x)) / (2 * h) - g.dgamma[c]) <=
            tol * (1 + std::fabs(g.dgamma[c])));
      up = p, down = p;
      up.beta[c] += h, down.beta[c] -= h;
      CHECK(std::fabs((loss(up, x) - loss(down, x)) / (2 * h) - g.dbeta[c]) <=
            tol * (1 + std::fabs(g.dbeta[c])));
    }
  }
}

// One library run against the reference. The library works in float from float statistics: every output
// is a sum of terms each carrying a few float roundings (<= 2^-24 each) plus a float lane sum of at most 128
// terms per block (worst case 128 * 2^-24 = 7.6e-6 of the terms' absolute sum), so 1e-5 of the absolute-sum
// bound (grads64's *_scale) covers it; 16-bit dx adds its storage rounding, half an ulp of the value.
template <class T>
void check_against_reference(const shape& s, layout lay, activation act, bool affine, int threads) {
  CAPTURE(s.name());
  CAPTURE(name_of(act));
  CAPTURE(gn_test::storage<T>::name);
  CAPTURE(lay == layout::nhwc ? "nhwc" : "nchw");
  CAPTURE(threads);
  const std::size_t n = s.elements(), C = s.channels, S = s.spatial;
  const bool nhwc = lay == layout::nhwc;
  const std::vector<T> x = gn_test::encode<T>(gn_test::normal(n, 11, 0.3, 1.3));
  const std::vector<T> dy = gn_test::encode<T>(gn_test::normal(n, 12));
  const std::vector<float> gamma = affine ? gn_test::normal(C, 13, 1.0, 0.5) : std::vector<float>{};
  const std::vector<float> beta = affine ? gn_test::normal(C, 14, 0.0, 0.3) : std::vector<float>{};
  groupnorm::problem p = gn_test::make_problem(s);
  p.memory_layout = lay;
  p.data_type = gn_test::storage<T>::type;
  p.fused_activation = act;
  // The forward's saved statistics, for relu's side of the kink (the float z the kernels see).
  std::vector<T> y(n);
  std::vector<float> mean(s.pairs()), rstd(s.pairs());
  groupnorm::plan(p).run(
      groupnorm::tensors<T>{.x = x, .y = y, .gamma = gamma, .beta = beta, .mean = mean, .rstd = rstd});
  tbb::task_arena arena(threads);
  const gn_test::bw::result<T> r = gn_test::bw::run<T>(p, x, dy, gamma, beta, {}, {}, &arena);

  std::vector<double> x64 = widen(gn_test::decode(x)), dy64 = widen(gn_test::decode(dy));
  if (nhwc) x64 = gn_test::bw::to_nchw(x64, C, S), dy64 = gn_test::bw::to_nchw(dy64, C, S);
  gn_test::bw::problem64 q{s.batch, C, S, s.groups, p.epsilon, act, widen(gamma), widen(beta)};
  const std::size_t cpg = C / s.groups;
  auto side = [&](std::size_t i, double) {
    const std::size_t c = i / S % C, pair = i / S / C * s.groups + c / cpg;
    const float d = static_cast<float>(x64[i]) - mean[pair];
    const float scale = static_cast<float>(q.gamma_at(c) * static_cast<double>(rstd[pair]));
    const float z = std::fma(d, scale, static_cast<float>(q.beta_at(c)));
    return z > 0 || std::isnan(z);
  };
  const gn_test::bw::grads64 g = gn_test::bw::backward64(q, x64, dy64, side);
  std::vector<float> dx = gn_test::decode(r.dx);
  if (nhwc) dx = gn_test::bw::to_nchw(dx, C, S);
  std::size_t bad = 0;
  for (std::size_t i = 0; i < n; ++i) {
    double tol = 1e-5 * g.dx_scale[i];
    if constexpr (!std::is_same_v<T, float>) tol += 0.5 * gn_test::storage<T>::ulp(std::fabs(g.dx[i]) + tol);
    if (!(std::fabs(dx[i] - g.dx[i]) <= tol) && bad++ == 0)
      FAIL_CHECK("dx[" << i << "] = " << dx[i] << ", expected " << g.dx[i] << " +- " << tol);
  }
  CHECK(bad == 0);
  for (std::size_t c = 0; c < C; ++c) {
    CHECK(std::fabs(r.dgamma[c] - g.dgamma[c]) <= 1e-5 * g.dgamma_scale[c]);
    CHECK(std::fabs(r.dbeta[c] - g.dbeta[c]) <= 1e-5 * g.dbeta_scale[c]);
  }
}

// Ranks 3-5 (spatial 7, 6 x 5, 3 x 4 x 5), G = 1, G = C, rows longer than a kernel block with a tail, a
// single slice split across threads, and many slices spread over the arena.
const shape kShapes[] = {{2, 6, 7, 3},    {2, 8, 30, 4},    {1, 4, 60, 2},   {2, 5, 33, 1},  {3, 4, 17, 4},
                         {1, 4, 4133, 2}, {1, 64, 4100, 1}, {8, 64, 81, 32}, {1, 300, 70, 3}};

TEST_CASE("backward matches the float64 reference: f32, NCHW and NHWC, every activation") {
  for (layout lay : {layout::nchw, layout::nhwc})
    for (const shape& s : kShapes)
      for (activation a : kActivations)
        for (int threads : {1, 2}) check_against_reference<float>(s, lay, a, true, threads);
}

TEST_CASE("backward matches the float64 reference without gamma and beta") {
  for (layout lay : {layout::nchw, layout::nhwc})
    for (activation a : {activation::none, activation::silu})
      check_against_reference<float>({2, 8, 30, 4}, lay, a, false, 2);
}

TEST_CASE("backward matches the float64 reference: f16 and bf16 storage") {
  for (layout lay : {layout::nchw, layout::nhwc})
    for (const shape& s : {shape{2, 8, 30, 4}, shape{1, 64, 4100, 1}, shape{3, 4, 17, 4}})
      for (activation a : kActivations) {
        check_against_reference<groupnorm::f16>(s, lay, a, true, 2);
        check_against_reference<groupnorm::bf16>(s, lay, a, true, 2);
      }
}

}  // namespace
