// Accuracy against the float64 reference (tools/reference.hpp): the seed example, many shapes, the mean /
// variance of every output group, gamma / beta, large offsets, constant slices, NaN / Inf propagation,
// zero-sized no-ops.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <oneapi/tbb/task_arena.h>

#include "test_util.hpp"

using namespace gn_test;

namespace {

// Tolerance on N(0,1) data: |y - ref| <= 1e-5 * (1 + |ref|).
// Why this bound is tight yet safe: x is stored in fp32 (the reference reads the same fp32 values, so storage
// adds nothing); each block's moments accumulate in fp32 lanes over <= 4096 elements after subtracting a
// center within std / sqrt(3) of the mean (relative error ~ sqrt(4096) * 2^-24 * 4/3 ~ 5e-6 worst case on the
// block variance, far less in practice), blocks and chunks merge in double, rstd is computed in double, and
// the apply is two fp32 roundings (scale and the fused product-plus-shift). That leaves a few fp32 ulps
// (~1e-7 relative) on y, so 1e-5 has a wide margin while any real defect (wrong group-to-channel mapping, a
// biased variance, the float E[x^2] - E[x]^2 formula on offset data, a skipped tail element) misses it by
// orders of magnitude.
constexpr double kTol = 1e-5;

void check_against_reference(const shape& s, bool affine, std::uint64_t seed) {
  CAPTURE(s.name());
  CAPTURE(affine);
  const std::vector<float> x = normal(s.elements(), seed);
  std::vector<float> gamma, beta;
  if (affine) {
    gamma = uniform(s.channels, seed + 1, 0.5, 2.0);
    beta = uniform(s.channels, seed + 2, -1.0, 1.0);
  }
  const float eps = 1e-5f;
  const std::vector<float> y = run(make_problem(s, eps), x, gamma, beta);
  const std::vector<double> ref =
      groupnorm::reference::group_norm(x.data(), s.batch, s.channels, s.spatial, s.groups, eps, gamma, beta);
  const compare_result r = compare(y, ref, kTol, kTol);
  INFO(r.describe());
  CHECK(r.failures == 0);
}

}  // namespace

TEST_CASE(
    "seed example 1x2x1x2 G=1 gives -1.3416 -0.4472 0.4472 1.3416 through a plan and the one-shot function") {
  const std::vector<float> x = {1.0f, 2.0f, 3.0f, 4.0f};
  const std::vector<float> gamma = {1.0f, 1.0f}, beta = {0.0f, 0.0f};
  const std::array<double, 4> expected = {-1.3416, -0.4472, 0.4472, 1.3416};

  groupnorm::problem p;
  p.batch = 1;
  p.channels = 2;
  p.spatial = 1 * 2;
  p.num_groups = 1;
  p.epsilon = 1e-5f;
  const std::vector<float> y = run(p, x, gamma, beta);
  for (std::size_t i = 0; i < 4; ++i) CHECK(std::fabs(y[i] - expected[i]) < 1e-4);

  const std::array<std::size_t, 4> shape4 = {1, 2, 1, 2};
  const std::vector<float> y1 = groupnorm::group_normalization(x, shape4, gamma, beta, 1, 1e-5f);
  REQUIRE(y1.size() == 4);
  for (std::size_t i = 0; i < 4; ++i) CHECK(std::fabs(y1[i] - expected[i]) < 1e-4);
  CHECK(same_bits(y, y1));

  // Absent gamma / beta mean 1 and 0.
  const std::vector<float> y2 = groupnorm::group_normalization(x, shape4, {}, {}, 1, 1e-5f);
  CHECK(same_bits(y, y2));
}

TEST_CASE("matches the float64 reference to 1e-5 over many shapes with and without gamma and beta") {
  const std::vector<shape> shapes = {
      {1, 4, 1, 2},          // spatial 1
      {3, 6, 1, 6},          // spatial 1 and channels_per_group 1: slices of one element (variance 0)
      {3, 6, 7, 6},          // G = C (instance norm), channels_per_group 1
      {2, 6, 7, 3},          // C=6 spatial=7
      {1, 13, 17, 1},        // G = 1 (layer norm), prime sizes
      {2, 13, 17, 13},       // G = C, prime sizes
      {1, 7, 11, 7},         // odd
      {3, 10, 15, 5},        // odd spatial, not a multiple of 16 or 32
      {2, 12, 33, 4},        // 99-element channels: SIMD bodies plus tails
      {4, 64, 25, 32},       // many small slices
      {1, 32, 64, 8},        // tiny path (2048 elements)
      {1, 3, 4097, 3},       // slice of 4097: one 4096-element block plus one element
      {1, 2, 4099, 1},       // slice of 8198: three blocks, the last short
      {2, 4, 9001, 2},       // 18002-element slices, batch > 1
      {1, 3, 32771, 1},      // 98313-element slice: more than one 32768-element chunk, split over the arena
      {2, 6, 12345, 3},      // several chunks per slice, 6 pairs
      {1, 8, 512 * 512, 1},  // 2M-element (8 MB) slice: larger than L2
  };
  std::uint64_t seed = 100;
  for (const shape& s : shapes) {
    check_against_reference(s, false, seed++);
    check_against_reference(s, true, seed++);
  }
}

TEST_CASE("one-shot group_normalization with a 4-d shape equals the reference") {
  const std::array<std::size_t, 4> dims = {2, 6, 5, 7};
  const shape s{2, 6, 35, 3};
  const std::vector<float> x = normal(s.elements(), 7);
  const std::vector<float> gamma = uniform(6, 8, -2.0, 2.0), beta = uniform(6, 9, -1.0, 1.0);
  const std::vector<float> y = groupnorm::group_normalization(x, dims, gamma, beta, 3, 1e-3f);
  const std::vector<double> ref =
      groupnorm::reference::group_norm(x.data(), 2, 6, 35, 3, static_cast<double>(1e-3f), gamma, beta);
  const compare_result r = compare(y, ref, kTol, kTol);
  INFO(r.describe());
  CHECK(r.failures == 0);
}

TEST_CASE("every output group has mean 0 and variance 1 when gamma is 1 and beta is 0") {
  // eps = 0: the data is continuous N(0,1) so no slice is constant, and the output variance is exactly 1 in
  // exact arithmetic (with eps > 0 it would be var / (var + eps)).
  const std::vector<shape> shapes = {{2, 6, 7, 3}, {1, 13, 17, 1}, {3, 8, 1000, 4}, {1, 4, 40000, 2}};
  std::uint64_t seed = 300;
  for (const shape& s : shapes) {
    CAPTURE(s.name());
    const std::vector<float> x = normal(s.elements(), seed++, 0.5, 3.0);
    const std::vector<float> y = run(make_problem(s, 0.0f), x);
    const std::size_t n = s.slice();
    for (std::size_t pair = 0; pair < s.pairs(); ++pair) {
      CAPTURE(pair);
      double sum = 0, sq = 0;
      for (std::size_t i = 0; i < n; ++i) sum += y[pair * n + i];
      const double m = sum / static_cast<double>(n);
      for (std::size_t i = 0; i < n; ++i) sq += (y[pair * n + i] - m) * (y[pair * n + i] - m);
      const double var = sq / static_cast<double>(n);
      CHECK(std::fabs(m) < 1e-5);
      CHECK(std::fabs(var - 1.0) < 1e-4);
    }
  }
}

TEST_CASE("gamma scales and beta shifts: gamma 2 beta 3 gives 2 y0 + 3") {
  const shape s{2, 8, 129, 4};
  const std::vector<float> x = normal(s.elements(), 11);
  const std::vector<float> y0 = run(make_problem(s), x);
  const std::vector<float> gamma(s.channels, 2.0f), beta(s.channels, 3.0f);
  const std::vector<float> y = run(make_problem(s), x, gamma, beta);
  std::size_t bad = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const double want = 2.0 * y0[i] + 3.0;
    if (!(std::fabs(y[i] - want) <= 1e-5 * (1.0 + std::fabs(want)))) ++bad;
  }
  CHECK(bad == 0);

  // Per-channel values land on their own channel: gamma = channel index + 1, beta = -channel index.
  std::vector<float> g2(s.channels), b2(s.channels);
  for (std::size_t c = 0; c < s.channels; ++c) {
    g2[c] = static_cast<float>(c + 1);
    b2[c] = -static_cast<float>(c);
  }
  const std::vector<float> y2 = run(make_problem(s), x, g2, b2);
  bad = 0;
  for (std::size_t i = 0; i < y2.size(); ++i) {
    const std::size_t c = (i / s.spatial) % s.channels;
    const double want = static_cast<double>(c + 1) * y0[i] - static_cast<double>(c);
    if (!(std::fabs(y2[i] - want) <= 1e-5 * (1.0 + std::fabs(want)))) ++bad;
  }
  CHECK(bad == 0);
}

TEST_CASE("large offsets keep xhat accurate to 1e-4: mean 1e4 std 1 and mean -3e5 std 1e-2") {
  // eps = 0, so xhat = (x - mean) / std exactly in the reference; any eps would have to be tiny against the
  // variance (1 and ~1e-4 here) to leave xhat unchanged at 1e-4. The reference reads the same fp32 values, so
  // the quantization of the data (ulp 2^-10 at 1e4, 2^-5 at 3e5) is common to both sides. The naive fp32
  // E[x^2] - E[x]^2 would lose every significant digit here.
  struct offset_case {
    double mean, stddev;
  };
  const offset_case cases[] = {{1e4, 1.0}, {-3e5, 1e-2}};
  const std::vector<shape> shapes = {{2, 6, 300, 3}, {1, 4, 20000, 1}, {1, 2, 70001, 1}};
  std::uint64_t seed = 500;
  for (const offset_case& oc : cases) {
    for (const shape& s : shapes) {
      CAPTURE(s.name());
      CAPTURE(oc.mean);
      const std::vector<float> x = normal(s.elements(), seed++, oc.mean, oc.stddev);
      const std::vector<float> y = run(make_problem(s, 0.0f), x);
      const std::vector<double> ref =
          groupnorm::reference::group_norm(x.data(), s.batch, s.channels, s.spatial, s.groups, 0.0);
      const compare_result r = compare(y, ref, 1e-4, 0.0);
      INFO(r.describe());
      CHECK(r.failures == 0);
    }
  }
}

TEST_CASE("data built to defeat the sampled block center still matches the reference to 1e-5 on every ISA") {
  // Block moments start from the mean of 16 evenly spaced elements of each 4096-element block (positions
  // j * n / 16, lib/kernels/block_moments.hpp). Here exactly those elements sit 60 std above the rest, so
  // that center misses the block mean by ~60 std and the one-pass answer would carry ~200x its usual rounding
  // error (Q / m2 = 1 + n d^2 / m2): measured without the refinement, 875 elements of the first shape miss
  // 1e-5 (worst 3e-5); with it the worst is 1.8e-7. The kernel must notice (d^2 > var / 3) and refine the
  // center. The first shape's 4096-element slices take the four-in-lockstep path, the second the chunked one.
  const std::vector<shape> shapes = {{4, 16, 4096, 16}, {1, 2, 4096 + 1000, 1}, {3, 8, 64, 4}, {2, 4, 37, 4}};
  std::uint64_t seed = 700;
  for (const shape& s : shapes) {
    CAPTURE(s.name());
    std::vector<float> x = normal(s.elements(), seed++, 1e3, 1.0);
    const std::size_t slice = s.channels / s.groups * s.spatial;
    for (std::size_t base = 0; base < x.size(); base += slice)
      for (std::size_t b = 0; b < slice; b += 4096) {
        const std::size_t n = std::min<std::size_t>(4096, slice - b);
        for (std::size_t j = 0; j < 16; ++j) x[base + b + j * n / 16] = 1060.0f;
      }
    const std::vector<float> y = run(make_problem(s, 0.0f), x);
    const std::vector<double> ref =
        groupnorm::reference::group_norm(x.data(), s.batch, s.channels, s.spatial, s.groups, 0.0);
    const compare_result r = compare(y, ref, kTol, kTol);
    INFO(r.describe());
    CHECK(r.failures == 0);
    // The refinement is part of the fixed operation sequence: every kernel family and every thread count
    // takes it, with the same bits.
    for (groupnorm::isa k : supported_isas()) {
      CAPTURE(groupnorm::to_string(k));
      groupnorm::problem p = make_problem(s, 0.0f);
      p.kernel_isa = k;
      CHECK(same_bits(run(p, x), y));
    }
    for (int threads : {1, 2, 3, 4}) {
      CAPTURE(threads);
      tbb::task_arena arena(threads);
      const groupnorm::plan pl(make_problem(s, 0.0f));
      std::vector<float> yt(x.size());
      pl.run(x, yt, {}, {}, &arena);
      CHECK(same_bits(yt, y));
    }
  }
}

TEST_CASE(
    "huge finite values whose squares overflow float still match the reference (exact double fallback)") {
  // Deviations around 1e20 square to ~1e40 > FLT_MAX: the float lane sums overflow, and a kernel without the
  // double fallback would report var = Inf and output beta. Values stay far enough below FLT_MAX that the
  // apply's x - mean cannot overflow. Tolerance as in the reference test: xhat is O(1), a few float
  // roundings.
  const std::vector<shape> shapes = {{2, 4, 300, 2}, {1, 2, 9000, 1}};
  std::uint64_t seed = 900;
  for (const shape& s : shapes) {
    CAPTURE(s.name());
    const std::vector<float> x = normal(s.elements(), seed++, 3e20, 1e20);
    const std::vector<float> y = run(make_problem(s), x);
    const std::vector<double> ref =
        groupnorm::reference::group_norm(x.data(), s.batch, s.channels, s.spatial, s.groups, 1e-5);
    const compare_result r = compare(y, ref, 1e-5, 1e-5);
    INFO(r.describe());
    CHECK(r.failures == 0);
  }
}

TEST_CASE("a constant slice with eps above 0 outputs beta") {
  const shape s{2, 4, 50, 2};
  std::vector<float> x = normal(s.elements(), 21);
  // Pair 1 (sample 0, group 1) and pair 2 (sample 1, group 0) constant, one of them at a large value.
  std::fill(x.begin() + 1 * 100, x.begin() + 2 * 100, 5.0f);
  std::fill(x.begin() + 2 * 100, x.begin() + 3 * 100, 12345.5f);
  const std::vector<float> gamma = {2.0f, -1.0f, 0.5f, 4.0f}, beta = {3.0f, -7.0f, 0.25f, 1.5f};
  const std::vector<float> y = run(make_problem(s, 1e-5f), x, gamma, beta);
  for (std::size_t i = 100; i < 300; ++i) {
    const std::size_t c = (i / s.spatial) % s.channels;
    CAPTURE(i);
    CHECK(std::fabs(y[i] - beta[c]) <= 1e-6 * (1.0 + std::fabs(beta[c])));
  }
  // The other slices are normal.
  const std::vector<double> ref = groupnorm::reference::group_norm(x.data(), 2, 4, 50, 2, 1e-5f, gamma, beta);
  for (std::size_t i : {std::size_t{0}, std::size_t{99}, std::size_t{300}, std::size_t{399}})
    CHECK(std::fabs(y[i] - ref[i]) <= kTol * (1 + std::fabs(ref[i])));
}

namespace {

// Puts `bad` at one position of slice `pair` and checks: that whole slice (and its saved rstd) is NaN, as the
// reference's is, its saved mean is the reference's (NaN for a NaN, +-Inf for an Inf: the sum is infinite),
// and every other slice equals the reference.
void check_poisoned(const shape& s, std::size_t pair, std::size_t offset, float bad) {
  CAPTURE(s.name());
  CAPTURE(offset);
  CAPTURE(bad);
  std::vector<float> x = normal(s.elements(), 31 + offset);
  const std::size_t n = s.slice();
  x[pair * n + offset] = bad;
  std::vector<groupnorm::reference::stats> ref_stats;
  const std::vector<double> ref = groupnorm::reference::group_norm(x.data(), s.batch, s.channels, s.spatial,
                                                                   s.groups, 1e-5, {}, {}, &ref_stats);
  const groupnorm::plan pl(make_problem(s));
  std::vector<float> y(x.size(), -777.0f), mean(s.pairs()), rstd(s.pairs());
  groupnorm::tensors<float> t{.x = x, .y = y, .mean = mean, .rstd = rstd};
  pl.run(t);
  std::size_t not_nan = 0, wrong_elsewhere = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    if (i / n == pair) {
      if (!std::isnan(ref[i])) FAIL("the reference itself is not NaN");  // guards the test's premise
      if (!std::isnan(y[i])) ++not_nan;
    } else if (!(std::fabs(y[i] - ref[i]) <= kTol * (1 + std::fabs(ref[i])))) {
      ++wrong_elsewhere;
    }
  }
  CHECK(not_nan == 0);
  CHECK(wrong_elsewhere == 0);
  const double ref_mean = ref_stats[pair].mean;
  if (std::isnan(ref_mean))
    CHECK(std::isnan(mean[pair]));
  else
    CHECK(mean[pair] == ref_mean);  // +-Inf, the same sign
  CHECK(std::isnan(rstd[pair]));    // the reference's var is NaN, so 1 / sqrt(var + eps) is NaN
  for (std::size_t q = 0; q < s.pairs(); ++q)
    if (q != pair) CHECK((std::isfinite(mean[q]) && std::isfinite(rstd[q])));
}

}  // namespace

TEST_CASE("NaN in one slice makes that slice NaN and leaves the other slices exact") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  check_poisoned({2, 4, 50, 2}, 1, 0, nan);         // first element of a one-block slice
  check_poisoned({2, 4, 50, 2}, 2, 37, nan);        // inside the SIMD body
  check_poisoned({2, 4, 50, 2}, 3, 99, nan);        // last element (tail)
  check_poisoned({1, 4, 5000, 2}, 0, 9000, nan);    // second block of a multi-block slice
  check_poisoned({1, 2, 40000, 1}, 0, 70000, nan);  // second chunk of a split slice
}

TEST_CASE("Inf in one slice makes that slice NaN and leaves the other slices exact") {
  const float inf = std::numeric_limits<float>::infinity();
  check_poisoned({2, 4, 50, 2}, 1, 0, inf);
  check_poisoned({2, 4, 50, 2}, 2, 37, -inf);
  check_poisoned({1, 4, 5000, 2}, 1, 4500, inf);
  check_poisoned({1, 2, 40000, 1}, 0, 33000, -inf);
}

TEST_CASE("zero batch or zero spatial is a no-op that leaves y untouched") {
  for (const shape& s : {shape{0, 4, 10, 2}, shape{3, 4, 0, 2}, shape{0, 4, 0, 4}}) {
    CAPTURE(s.name());
    const groupnorm::plan pl(make_problem(s));
    CHECK(pl.element_count() == 0);
    std::vector<float> buffer(8, 42.0f);
    const std::vector<float> before = buffer;
    const std::vector<float> gamma(4, 2.0f), beta(4, 1.0f);
    pl.run(std::span<const float>(buffer.data(), 0), std::span<float>(buffer.data(), 0), gamma, beta);
    pl.run_inplace(std::span<float>(buffer.data(), 0));
    pl.run({}, {});
    CHECK(same_bits(buffer, before));
    // Saved statistics of a zero-spatial problem: the plan has batch * groups pairs but nothing to normalize.
  }
  // The one-shot function returns an empty result.
  const std::array<std::size_t, 4> dims = {0, 4, 3, 3};
  CHECK(groupnorm::group_normalization({}, dims, {}, {}, 2).empty());
}
