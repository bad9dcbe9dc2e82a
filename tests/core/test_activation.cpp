// Fused SiLU and GELU epilogues (lib/kernels/activation.hpp): accuracy against float64 GroupNorm followed by
// the float64 activation, bitwise independence of the kernel family and of the arena's thread count, and
// special values.
//
// Accuracy bounds used below, from an exhaustive sweep of every float in [-100, 100] against float64
// references (x / (1 + exp(-x)) and 0.5 x erfc(-x / sqrt 2)), tools/activation_sweep.cpp:
// - SiLU rounds three times (the exp's 1 + w, the denominator, the quotient), so its relative error stays
//   below about 2 * 2^-24, i.e. under 2 ulp (measured max 1.59 ulp where the result is normal, 1.27 * 2^-149
//   where it is subnormal, where one more rounding of the scaling adds half a spacing). The tests allow 2 ulp
//   (resp. 2 * 2^-149).
// - GELU is about correctly rounded: measured 0.88 ulp (normal) and 0.80 * 2^-149 (subnormal); the tests
//   allow 1 ulp (resp. 2^-149).
// Any real defect (a wrong branch, a lost tail term, a wrong scaling) misses these by orders of magnitude.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include <oneapi/tbb/task_arena.h>

#include "test_util.hpp"

using namespace gn_test;

namespace {

using groupnorm::activation;

double silu64(double z) {
  return z / (1.0 + std::exp(-z));
}
double gelu64(double z) {
  return 0.5 * z * std::erfc(-z / std::sqrt(2.0));
}
double act64(activation a, double z) {
  return a == activation::silu ? silu64(z) : gelu64(z);
}
std::string act_name(activation a) {
  return a == activation::silu ? "silu" : "gelu";
}
// The bounds above, in ulps of the float64 result (spacings 2^-149 where it is subnormal).
double max_ulp(activation a) {
  return a == activation::silu ? 2.0 : 1.0;
}

// Largest |f'| of the activation: SiLU' peaks at 1.0998 (z ~ 2.40), GELU' = Phi(z) + z phi(z) at 1.1289 (z =
// sqrt 2).
constexpr double kLipschitz = 1.13;
// The suite's GroupNorm bound (test_reference.cpp): |z - z_ref| <= 1e-5 * (1 + |z_ref|).
constexpr double kGnTol = 1e-5;

// Float spacing at |v| (normal range), or the subnormal spacing 2^-149.
double float_ulp(double v) {
  const double a = std::fabs(v);
  if (a < std::numeric_limits<float>::min()) return std::ldexp(1.0, -149);
  int e = 0;
  std::frexp(a, &e);  // a = m 2^e, m in [0.5, 1)
  return std::ldexp(1.0, e - 24);
}

// |got - f(z)| in float ulps of f(z), f evaluated in float64 on the float z.
double ulp_error(activation a, float z, float got) {
  const double want = act64(a, z);
  return std::fabs(static_cast<double>(got) - want) / float_ulp(want);
}

groupnorm::problem make(const shape& s, activation a) {
  groupnorm::problem p = make_problem(s);
  p.fused_activation = a;
  return p;
}

void check_accuracy(const shape& s, activation a, std::uint64_t seed) {
  CAPTURE(s.name());
  CAPTURE(act_name(a));
  // gamma up to +-4 spreads z over about [-20, 20]: both SiLU tails, GELU's underflowing tail included.
  const std::vector<float> x = normal(s.elements(), seed, 0.25, 2.0);
  const std::vector<float> gamma = uniform(s.channels, seed + 1, -4.0, 4.0);
  const std::vector<float> beta = uniform(s.channels, seed + 2, -2.0, 2.0);
  const std::vector<float> y = run(make(s, a), x, gamma, beta);
  const std::vector<float> z = run(make(s, activation::none), x, gamma, beta);
  const std::vector<double> z_ref =
      groupnorm::reference::group_norm(x.data(), s.batch, s.channels, s.spatial, s.groups, 1e-5, gamma, beta);

  // (a) Against float64 GroupNorm followed by the float64 activation: the GroupNorm error moves f by at most
  // kLipschitz times itself, the activation adds at most max_ulp ulps of the result.
  std::size_t failures = 0, first = 0;
  // (b) The fused output is the activation of exactly the float z the unfused run writes (same kernel code up
  // to the epilogue), so it must be within the activation's own bound of f(z) in float64: max_ulp.
  std::size_t ulp_failures = 0, ulp_first = 0;
  double worst_ulp = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const double want = act64(a, z_ref[i]);
    const double tol = kLipschitz * kGnTol * (1.0 + std::fabs(z_ref[i])) + max_ulp(a) * float_ulp(want);
    if (!(std::fabs(static_cast<double>(y[i]) - want) <= tol) && failures++ == 0) first = i;
    const double u = ulp_error(a, z[i], y[i]);
    worst_ulp = std::max(worst_ulp, u);
    if (!(u <= max_ulp(a)) && ulp_failures++ == 0) ulp_first = i;
  }
  {
    INFO("first reference failure at " << first << ": got " << y[first] << ", want " << act64(a, z_ref[first])
                                       << " (z_ref " << z_ref[first] << ")");
    CHECK(failures == 0);
  }
  {
    INFO("first ulp failure at " << ulp_first << ": z " << z[ulp_first] << ", got " << y[ulp_first]
                                 << ", want " << act64(a, z[ulp_first]) << ", max " << worst_ulp << " ulp");
    CHECK(ulp_failures == 0);
  }
}

// Runs one configuration with every supported kernel family and arenas of 1, 2 and 3 threads (and the
// caller's arena), and requires the same output and sum bits everywhere.
template <class T>
void check_bitwise(const shape& s, activation a, bool residual, std::uint64_t seed) {
  CAPTURE(s.name());
  CAPTURE(act_name(a));
  CAPTURE(residual);
  const std::vector<T> x = encode<T>(normal(s.elements(), seed, 0.5, 3.0));
  const std::vector<T> r = encode<T>(normal(residual ? s.elements() : 0, seed + 1));
  const std::vector<float> gamma = uniform(s.channels, seed + 2, -4.0, 4.0);
  const std::vector<float> beta = uniform(s.channels, seed + 3, -2.0, 2.0);
  std::vector<T> first;
  int runs = 0;
  for (groupnorm::isa k : supported_isas()) {
    CAPTURE(groupnorm::to_string(k));
    groupnorm::problem p = make(s, a);
    p.kernel_isa = k;
    p.residual = residual;
    p.data_type = storage<T>::type;
    const groupnorm::plan pl(p);
    CHECK(pl.selected_isa() == k);
    for (int threads : {0, 1, 2, 3}) {  // 0: the caller's current arena
      CAPTURE(threads);
      std::vector<T> y(x.size()), sum(residual ? x.size() : 0);
      groupnorm::tensors<T> t{.x = x, .y = y, .gamma = gamma, .beta = beta, .residual = r, .sum = sum};
      if (threads == 0) {
        pl.run(t);
      } else {
        tbb::task_arena arena(threads);
        pl.run(t, &arena);
      }
      y.insert(y.end(), sum.begin(), sum.end());
      ++runs;
      if (first.empty()) {
        first = y;
      } else {
        CAPTURE(first_bit_difference(first, y));
        CHECK(same_bits(first, y));
      }
    }
  }
  CHECK(runs == 4 * static_cast<int>(supported_isas().size()));
}

}  // namespace

TEST_CASE("fused silu and gelu match float64 GroupNorm followed by the float64 activation") {
  std::uint64_t seed = 100;
  for (activation a : {activation::silu, activation::gelu}) {
    check_accuracy({1, 6, 1, 3}, a, seed++);          // tiny slices, all tail
    check_accuracy({2, 32, 33 * 31, 8}, a, seed++);   // vector body plus tails in every channel
    check_accuracy({3, 30, 1201, 10}, a, seed++);     // odd sizes
    check_accuracy({1, 8, 128 * 129, 2}, a, seed++);  // large slices (split across chunks)
  }
}

TEST_CASE("fused silu and gelu are bitwise identical for every kernel family and arenas of 1 2 3 threads") {
  MESSAGE("kernel families compared: " << supported_isas().size());
  std::uint64_t seed = 200;
  for (activation a : {activation::silu, activation::gelu}) {
    check_bitwise<float>({2, 32, 33 * 31, 8}, a, false, seed++);
    check_bitwise<float>({1, 8, 128 * 129, 2}, a, false, seed++);
    check_bitwise<float>({3, 30, 1201, 10}, a, true, seed++);
    check_bitwise<groupnorm::f16>({2, 24, 517, 6}, a, true, seed++);
    check_bitwise<groupnorm::bf16>({2, 24, 517, 6}, a, false, seed++);
  }
}

TEST_CASE("fused silu and gelu special values: NaN, infinities, huge and tiny magnitudes, zeros") {
  // gamma = 0 makes every element of a channel exactly beta (z = (x - mean) * 0 + beta), so beta feeds chosen
  // values to the activation. One channel per group; spatial 19 covers the vector body and the scalar tail.
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> values = {
      nan,       inf,      -inf,      3e38f,  -3e38f,  1e30f,  -1e30f,  120.5f, -120.5f,  100.0f,
      -100.0f,   -95.0f,   -92.0f,    -88.5f, -30.0f,  30.0f,  20.0f,   -20.0f, -14.5f,   -14.0f,
      -13.25f,   -13.0f,   -10.0f,    10.0f,  9.999f,  -5.0f,  5.0f,    -1.0f,  1.0f,     0x1p-27f,
      -0x1p-27f, 0x1p-26f, -0x1p-26f, 1e-30f, -1e-30f, 1e-40f, -1e-40f, 0.0f,   0.34657f, -0.34657f};
  const shape s{1, values.size(), 19, values.size()};
  const std::vector<float> x = normal(s.elements(), 7);
  const std::vector<float> gamma(s.channels, 0.0f);
  for (activation a : {activation::silu, activation::gelu}) {
    CAPTURE(act_name(a));
    const std::vector<float> y = run(make(s, a), x, gamma, values);
    for (std::size_t c = 0; c < s.channels; ++c) {
      const float v = values[c];
      CAPTURE(v);
      for (std::size_t i = c * s.spatial; i < (c + 1) * s.spatial; ++i) {
        CAPTURE(i);
        const float got = y[i];
        if (std::isnan(v)) {
          CHECK(std::isnan(got));
        } else if (v == inf || v > 1e29f) {
          CHECK(got == v);  // x * (1 - tiny) rounds to x; +inf stays +inf
        } else if (v == -inf || v < -1e29f) {
          CHECK(got == 0.0f);  // the exact result underflows
          CHECK(std::signbit(got));
        } else {
          CHECK(ulp_error(a, v, got) <= max_ulp(a));
          CHECK(std::signbit(got) == std::signbit(act64(a, v)));
        }
      }
    }
  }

  // NaN inside a group makes its statistics NaN: the whole group, activation included, is NaN; the others are
  // not.
  std::vector<float> xn = normal(4 * 37, 11);
  xn[37 + 5] = nan;
  for (activation a : {activation::silu, activation::gelu}) {
    CAPTURE(act_name(a));
    const std::vector<float> y = run(make({1, 4, 37, 4}, a), xn);
    for (std::size_t i = 0; i < y.size(); ++i) {
      CAPTURE(i);
      CHECK(std::isnan(y[i]) == (i >= 37 && i < 74));
    }
  }

  // Zeros: the fused output of an element whose unfused value is zero is that same zero, sign included.
  // gamma = -0 makes every z an exact zero; it is -0 where fma(x - mean, -0, shift) adds a -0 product to a -0
  // shift, and +0 elsewhere, so both signs reach the epilogue, which must keep them (silu(-0) = gelu(-0) =
  // -0, also covered by the exhaustive sweep).
  const std::vector<float> xz = normal(3 * 21, 13);
  const shape sz{1, 3, 21, 3};
  const std::vector<float> gz(3, -0.0f), bz(3, -0.0f);
  const std::vector<float> z = run(make(sz, activation::none), xz, gz, bz);
  for (activation a : {activation::silu, activation::gelu}) {
    CAPTURE(act_name(a));
    const std::vector<float> y = run(make(sz, a), xz, gz, bz);
    for (std::size_t i = 0; i < y.size(); ++i) {
      CAPTURE(i);
      CAPTURE(z[i]);
      REQUIRE(z[i] == 0.0f);
      CHECK(y[i] == 0.0f);
      CHECK(std::signbit(y[i]) == std::signbit(z[i]));
    }
  }
}
