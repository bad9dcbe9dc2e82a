// NCHW features beyond plain f32 normalization: saved statistics, fused residual (with the sum output), fused
// relu, and f16 / bf16 storage — each against the float64 reference.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "test_util.hpp"

using namespace gn_test;

namespace {

constexpr double kTol = 1e-5;  // the f32 tolerance, justified in test_reference.cpp

const std::vector<shape> kShapes = {{2, 6, 7, 3},    {1, 13, 17, 1},  {3, 10, 15, 5},
                                    {1, 3, 4097, 3}, {2, 4, 9001, 2}, {1, 2, 40001, 1}};

}  // namespace

TEST_CASE("saved mean and rstd match the reference mean and 1 over sqrt of var plus eps to 1e-5") {
  std::uint64_t seed = 1;
  for (const shape& s : kShapes) {
    CAPTURE(s.name());
    // Mean 3, std 2: the relative tolerance on the mean is meaningful (|mean| well away from 0).
    const std::vector<float> x = normal(s.elements(), seed++, 3.0, 2.0);
    for (float eps : {0.0f, 1e-5f, 0.5f}) {
      CAPTURE(eps);
      std::vector<float> y(x.size()), mean(s.pairs(), -1.0f), rstd(s.pairs(), -1.0f);
      groupnorm::tensors<float> t{.x = x, .y = y, .mean = mean, .rstd = rstd};
      groupnorm::plan(make_problem(s, eps)).run(t);
      std::vector<groupnorm::reference::stats> st;
      (void)groupnorm::reference::group_norm(x.data(), s.batch, s.channels, s.spatial, s.groups,
                                             static_cast<double>(eps), {}, {}, &st);
      for (std::size_t q = 0; q < s.pairs(); ++q) {
        CAPTURE(q);
        const double want_rstd = 1.0 / std::sqrt(st[q].var + static_cast<double>(eps));
        CHECK(std::fabs(mean[q] - st[q].mean) <= kTol * std::fabs(st[q].mean));
        CHECK(std::fabs(rstd[q] - want_rstd) <= kTol * want_rstd);
      }
      // Saving statistics does not change y.
      CHECK(same_bits(y, run(make_problem(s, eps), x)));
    }
  }
}

TEST_CASE("residual: y normalizes x plus residual and sum equals x plus residual rounded to float") {
  std::uint64_t seed = 100;
  for (const shape& s : kShapes) {
    CAPTURE(s.name());
    const std::vector<float> x = normal(s.elements(), seed++), r = normal(s.elements(), seed++, 0.5, 0.5);
    const std::vector<float> gamma = uniform(s.channels, seed++, 0.5, 2.0),
                             beta = uniform(s.channels, seed++, -1, 1);
    std::vector<float> xr(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) xr[i] = x[i] + r[i];  // fp32 addition, as stored in sum

    groupnorm::problem p = make_problem(s);
    p.residual = true;
    const groupnorm::plan pl(p);
    const std::vector<double> ref = groupnorm::reference::group_norm(xr.data(), s.batch, s.channels,
                                                                     s.spatial, s.groups, 1e-5f, gamma, beta);
    for (bool with_sum : {false, true}) {
      CAPTURE(with_sum);
      std::vector<float> y(x.size()), sum(with_sum ? x.size() : 0);
      groupnorm::tensors<float> t{.x = x, .y = y, .gamma = gamma, .beta = beta, .residual = r, .sum = sum};
      pl.run(t);
      const compare_result cr = compare(y, ref, kTol, kTol);
      INFO(cr.describe());
      CHECK(cr.failures == 0);
      if (with_sum) CHECK(same_bits(sum, xr));
      // The same bits as normalizing the precomputed x + residual without the residual path.
      CHECK(same_bits(y, run(make_problem(s), xr, gamma, beta)));
    }
    // In place with a residual: y == x.
    std::vector<float> xy = x;
    groupnorm::tensors<float> t{.x = xy, .y = xy, .gamma = gamma, .beta = beta, .residual = r};
    pl.run(t);
    CHECK(same_bits(xy, run(make_problem(s), xr, gamma, beta)));
  }
}

TEST_CASE("relu: y equals max of the reference and 0 with exact zeros for negative values") {
  std::uint64_t seed = 200;
  for (const shape& s : kShapes) {
    CAPTURE(s.name());
    const std::vector<float> x = normal(s.elements(), seed++);
    const std::vector<float> gamma = uniform(s.channels, seed++, -2.0, 2.0),
                             beta = uniform(s.channels, seed++, -1, 1);
    groupnorm::problem p = make_problem(s);
    p.fused_activation = groupnorm::activation::relu;
    const std::vector<float> y = run(p, x, gamma, beta);
    std::vector<double> ref = groupnorm::reference::group_norm(x.data(), s.batch, s.channels, s.spatial,
                                                               s.groups, 1e-5f, gamma, beta);
    for (double& v : ref) v = std::max(v, 0.0);
    const compare_result cr = compare(y, ref, kTol, kTol);
    INFO(cr.describe());
    CHECK(cr.failures == 0);
    // relu of the plain output, element for element: negatives are exactly +0.
    const std::vector<float> plain = run(make_problem(s), x, gamma, beta);
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < y.size(); ++i) {
      const float want = plain[i] < 0.0f ? 0.0f : plain[i];
      if (std::memcmp(&want, &y[i], sizeof(float)) != 0 && !(want == 0.0f && y[i] == 0.0f)) ++wrong;
      if (std::signbit(y[i])) ++wrong;
    }
    CHECK(wrong == 0);
  }
  // NaN passes through relu (it is not silently replaced by 0).
  std::vector<float> x = normal(40, 9);
  x[3] = std::numeric_limits<float>::quiet_NaN();
  groupnorm::problem p = make_problem({1, 4, 10, 2});
  p.fused_activation = groupnorm::activation::relu;
  const std::vector<float> y = run(p, x);
  for (std::size_t i = 0; i < 20; ++i) CHECK(std::isnan(y[i]));
  for (std::size_t i = 20; i < 40; ++i) CHECK((y[i] >= 0.0f));
}

TEST_CASE("test helpers: the independent f16 and bf16 converters round to nearest even") {
  CHECK(float_to_half_bits(1.0f) == 0x3c00);
  CHECK(float_to_half_bits(-2.0f) == 0xc000);
  CHECK(float_to_half_bits(65504.0f) == 0x7bff);
  CHECK(float_to_half_bits(65520.0f) == 0x7c00);  // the tie above 65504 rounds to even: Inf
  CHECK(float_to_half_bits(0.1f) == 0x2e66);
  CHECK(float_to_half_bits(std::ldexp(1.0f, -24)) == 0x0001);         // smallest subnormal
  CHECK(float_to_half_bits(std::ldexp(1.0f, -25)) == 0x0000);         // tie -> even (0)
  CHECK(float_to_half_bits(std::ldexp(3.0f, -25)) == 0x0002);         // tie 1.5 ulp -> even (2)
  CHECK(float_to_half_bits(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);  // tie -> even
  CHECK(float_to_half_bits(1.0f + std::ldexp(3.0f, -11)) == 0x3c02);  // tie -> even (up)
  CHECK(half_bits_to_float(0x3555) == doctest::Approx(0.333251953125).epsilon(1e-12));
  CHECK(half_bits_to_float(0x0001) == std::ldexp(1.0f, -24));
  CHECK(std::isnan(half_bits_to_float(0x7e00)));
  for (std::uint32_t h = 0; h < 0x7c00; ++h)  // every finite half round-trips
    if (float_to_half_bits(half_bits_to_float(static_cast<std::uint16_t>(h))) != h)
      FAIL("half round trip " << h);
  CHECK(float_to_bf16_bits(1.0f) == 0x3f80);
  CHECK(float_to_bf16_bits(std::bit_cast<float>(0x3f808000u)) == 0x3f80);  // tie -> even
  CHECK(float_to_bf16_bits(std::bit_cast<float>(0x3f818000u)) == 0x3f82);  // tie -> even (up)
  CHECK(float_to_bf16_bits(std::bit_cast<float>(0x3f808001u)) == 0x3f81);
  CHECK(bf16_bits_to_float(0x4049) == 3.140625f);
}

namespace {

// 16-bit storage: the output must lie within one ulp of the storage type (at the reference value) of the
// float64 reference computed on the decoded inputs. Correct rounding of the fp32 result gives <= 1/2 ulp; the
// fp32 result itself is within ~1e-7 * (1 + |ref|) of the reference (see test_reference.cpp), which can move
// a value that sits next to a rounding midpoint to the farther neighbour, still within 1 ulp. The absolute
// slack of 1e-6 covers outputs so close to 0 that the fp32 pipeline's own absolute error (~ulp_f32(|beta| +
// |gamma * xhat|), at most ~5e-7 for these magnitudes) exceeds the storage ulp there (f16 subnormal ulp is
// 6e-8).
template <class T>
void check_storage(const shape& s, bool residual, std::uint64_t seed) {
  CAPTURE(s.name());
  CAPTURE(storage<T>::name);
  CAPTURE(residual);
  const std::vector<T> x = encode<T>(normal(s.elements(), seed, 0.5, 2.0));
  const std::vector<T> r = encode<T>(normal(residual ? s.elements() : 0, seed + 1));
  const std::vector<float> gamma = uniform(s.channels, seed + 2, 0.5, 2.0);
  const std::vector<float> beta = uniform(s.channels, seed + 3, -1.0, 1.0);
  std::vector<float> xf = decode(x);
  if (residual) {
    const std::vector<float> rf = decode(r);
    for (std::size_t i = 0; i < xf.size(); ++i) xf[i] += rf[i];  // the library adds in fp32
  }
  groupnorm::problem p = make_problem(s);
  p.data_type = storage<T>::type;
  p.residual = residual;
  std::vector<T> y(x.size(), T{0xffff}), sum(residual ? x.size() : 0);
  std::vector<float> mean(s.pairs()), rstd(s.pairs());
  groupnorm::tensors<T> t{
      .x = x, .y = y, .gamma = gamma, .beta = beta, .residual = r, .sum = sum, .mean = mean, .rstd = rstd};
  groupnorm::plan(p).run(t);

  std::vector<groupnorm::reference::stats> st;
  const std::vector<double> ref = groupnorm::reference::group_norm(xf.data(), s.batch, s.channels, s.spatial,
                                                                   s.groups, 1e-5f, gamma, beta, &st);
  std::size_t bad = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const double got = storage<T>::to(y[i]);
    if (!(std::fabs(got - ref[i]) <= storage<T>::ulp(ref[i]) + 1e-6)) {
      if (bad++ == 0) MESSAGE("first bad element " << i << ": got " << got << ", reference " << ref[i]);
    }
  }
  CHECK(bad == 0);
  if (residual) {
    // sum is x + residual (fp32) rounded to the storage type.
    std::size_t bad_sum = 0;
    for (std::size_t i = 0; i < sum.size(); ++i)
      if (sum[i].bits != storage<T>::from(xf[i]).bits) ++bad_sum;
    CHECK(bad_sum == 0);
  }
  // Statistics are float and as accurate as for f32 storage.
  for (std::size_t q = 0; q < s.pairs(); ++q) {
    CHECK(std::fabs(mean[q] - st[q].mean) <= kTol * (std::fabs(st[q].mean) + std::sqrt(st[q].var)));
    CHECK(std::fabs(rstd[q] - 1.0 / std::sqrt(st[q].var + 1e-5f)) <= kTol / std::sqrt(st[q].var + 1e-5f));
  }
}

}  // namespace

TEST_CASE("f16 storage: every output within one f16 ulp of the float64 reference") {
  std::uint64_t seed = 300;
  for (const shape& s : kShapes) {
    check_storage<groupnorm::f16>(s, false, seed++);
    check_storage<groupnorm::f16>(s, true, seed++);
  }
}

TEST_CASE("bf16 storage: every output within one bf16 ulp of the float64 reference") {
  std::uint64_t seed = 400;
  for (const shape& s : kShapes) {
    check_storage<groupnorm::bf16>(s, false, seed++);
    check_storage<groupnorm::bf16>(s, true, seed++);
  }
}

TEST_CASE("f16 and bf16 storage keep NaN and Inf in their own slice and handle a constant slice") {
  const shape s{2, 4, 50, 2};
  std::vector<float> xf = normal(s.elements(), 500);
  xf[120] = std::numeric_limits<float>::quiet_NaN();    // pair 1
  xf[250] = std::numeric_limits<float>::infinity();     // pair 2
  std::fill(xf.begin() + 300, xf.begin() + 400, 2.5f);  // pair 3 constant
  const std::vector<float> beta = {0.5f, -0.25f, 1.0f, 2.0f};
  auto check = [&](auto tag) {
    using T = decltype(tag);
    CAPTURE(storage<T>::name);
    const std::vector<T> x = encode<T>(xf);
    std::vector<T> y(x.size());
    groupnorm::problem p = make_problem(s);
    p.data_type = storage<T>::type;
    groupnorm::tensors<T> t{.x = x, .y = y, .beta = beta};
    groupnorm::plan(p).run(t);
    const std::vector<float> yf = decode(y);
    for (std::size_t i = 100; i < 300; ++i) CHECK(std::isnan(yf[i]));
    for (std::size_t i = 300; i < 400; ++i) CHECK(yf[i] == beta[(i / 50) % 4]);
    for (std::size_t i = 0; i < 100; ++i) CHECK(std::isfinite(yf[i]));
  };
  check(groupnorm::f16{});
  check(groupnorm::bf16{});
}
