// Accuracy at the bottom of the float range: epsilon = 0 and standard deviations of 1e-20 to 1e-30, whose
// float squares are subnormal or vanish, in both layouts and in f32 and bf16 storage, against the float64
// reference; the same bits on every kernel family and thread count. f16 is not tested here: its smallest
// subnormal is 6e-8, so it cannot hold deviations of 1e-20.
#include <cmath>
#include <cstdint>
#include <vector>

#include <oneapi/tbb/task_arena.h>

#include "test_util.hpp"

using namespace gn_test;

namespace {

// |y - ref| <= 1e-5 * (1 + |ref|): as in test_reference.cpp. xhat is O(1); a slice whose var + eps is below
// FLT_MIN is redone in double (exact moments), and the apply's x - mean (deviations of 1e-30 are still normal
// floats) and its scale (rstd up to 1e30, far below FLT_MAX) are a few float roundings. A variance from
// underflowed squares is off by x3 or more (or zero: Inf / NaN), far outside the bound.
constexpr double kTol = 1e-5;

const std::vector<double> kStddevs = {1e-20, 1e-22, 1e-24, 1e-26, 1e-28, 1e-30};

// NCHW: four 4096-element slices (the four-in-lockstep path), a slice of several blocks with a partial last
// one (chunked path), odd small slices (single-slice path with tails).
const std::vector<shape> kNchwShapes = {{4, 16, 4096, 16}, {1, 2, 4096 + 1000, 1}, {2, 4, 37, 4}};
// NHWC: one lane per channel, packed rows (C = 6), parts of one group wider than a tile (C = 4500, G = 1).
const std::vector<shape> kNhwcShapes = {{1, 320, 300, 32}, {2, 6, 999, 3}, {1, 4500, 9, 1}};

// (B, C, S) -> (B, S, C): the reference is NCHW.
std::vector<float> nchw_to_nhwc(const std::vector<float>& v, const shape& s) {
  std::vector<float> out(v.size());
  for (std::size_t b = 0; b < s.batch; ++b)
    for (std::size_t i = 0; i < s.spatial; ++i)
      for (std::size_t c = 0; c < s.channels; ++c)
        out[(b * s.spatial + i) * s.channels + c] = v[(b * s.channels + c) * s.spatial + i];
  return out;
}

// Runs the problem on NCHW-ordered data x (transposed in and out for NHWC), storage T, returning y in NCHW
// order as floats.
template <class T>
std::vector<float> run_layout(groupnorm::problem p, const shape& s, const std::vector<float>& x,
                              tbb::task_arena* arena = nullptr) {
  p.data_type = storage<T>::type;
  const bool nhwc = p.memory_layout == groupnorm::layout::nhwc;
  const std::vector<T> xs = encode<T>(nhwc ? nchw_to_nhwc(x, s) : x);
  std::vector<T> ys(xs.size());
  groupnorm::tensors<T> t{.x = xs, .y = ys};
  groupnorm::plan(p).run(t, arena);
  const std::vector<float> y = decode(ys);
  if (!nhwc) return y;
  std::vector<float> back(y.size());
  for (std::size_t b = 0; b < s.batch; ++b)
    for (std::size_t i = 0; i < s.spatial; ++i)
      for (std::size_t c = 0; c < s.channels; ++c)
        back[(b * s.channels + c) * s.spatial + i] = y[(b * s.spatial + i) * s.channels + c];
  return back;
}

template <class T>
double storage_ulp(double v) {
  if constexpr (std::is_same_v<T, float>)
    return 0.0;  // f32 output is compared unrounded: kTol covers the float arithmetic
  else
    return storage<T>::ulp(v);
}

// x (NCHW order) is already representable in T; checks y against the eps = 0 reference and the bits against
// every kernel family and thread count.
template <class T>
void check_tiny(groupnorm::layout layout, const shape& s, const std::vector<float>& x) {
  groupnorm::problem p = make_problem(s, 0.0f);
  p.memory_layout = layout;
  const std::vector<float> y = run_layout<T>(p, s, x);
  const std::vector<double> ref =
      groupnorm::reference::group_norm(x.data(), s.batch, s.channels, s.spatial, s.groups, 0.0);
  std::size_t bad = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    // One rounding of the storage type (half an ulp) on top of the f32 computation's error.
    const double tol = 0.5 * storage_ulp<T>(ref[i]) + kTol * (1.0 + std::fabs(ref[i]));
    if (!(std::fabs(static_cast<double>(y[i]) - ref[i]) <= tol) && bad++ == 0)
      FAIL_CHECK("element " << i << ": got " << y[i] << ", want " << ref[i]);
  }
  CHECK(bad == 0);
  for (groupnorm::isa k : supported_isas()) {
    CAPTURE(groupnorm::to_string(k));
    groupnorm::problem pk = p;
    pk.kernel_isa = k;
    CHECK(same_bits(run_layout<T>(pk, s, x), y));
  }
  for (int threads : {1, 2, 3}) {
    CAPTURE(threads);
    tbb::task_arena arena(threads);
    CHECK(same_bits(run_layout<T>(p, s, x, &arena), y));
  }
}

template <class T>
void check_all_stddevs(groupnorm::layout layout, const std::vector<shape>& shapes) {
  std::uint64_t seed = 1300;
  for (const shape& s : shapes) {
    CAPTURE(s.name());
    for (double sd : kStddevs) {
      CAPTURE(sd);
      // A mean of 2 std: the sampled center and the refinement see an offset as on ordinary data.
      check_tiny<T>(layout, s, decode(encode<T>(normal(s.elements(), seed++, 2 * sd, sd))));
    }
  }
}

// Tiny deviations (|x| ~ 1e-25: squares below the smallest subnormal) laid out so that every float lane of
// the moments sums +u then -u, and the sampled center is exactly 0: the deviation and square sums both come
// out exactly zero, as for a constant slice, while the reference variance is ~1e-50. NCHW lanes take element
// i of a block in lane i % 32: lanes l % 4 != 0 alternate +u, -u every 32 elements, lanes l % 4 == 0 (where
// the center samples j * n / 16 fall for n = 64 and n = 4096) are zero. Slices are multiples of 64.
std::vector<float> cancelling_nchw(const shape& s, std::uint64_t seed) {
  const std::vector<float> v = uniform(32, seed, 0.5, 2.0);
  std::vector<float> x(s.elements());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::size_t lane = i % 32;
    x[i] = lane % 4 == 0 ? 0.0f : v[lane] * ((i / 32) % 2 ? -1e-25f : 1e-25f);
  }
  return x;
}

// NHWC lanes are channels summed down the rows: rows repeat 0, +u, 0, -u, so the sampled rows (evenly spaced
// at an even step, or all 16 first rows of a short block) average to exactly 0. In NCHW order for the
// reference.
std::vector<float> cancelling_nhwc(const shape& s, std::uint64_t seed) {
  const std::vector<float> v = uniform(s.channels, seed, 0.5, 2.0);
  std::vector<float> x(s.elements());
  for (std::size_t b = 0; b < s.batch; ++b)
    for (std::size_t c = 0; c < s.channels; ++c)
      for (std::size_t i = 0; i < s.spatial; ++i)
        x[(b * s.channels + c) * s.spatial + i] = i % 2 == 0 ? 0.0f : v[c] * (i % 4 == 1 ? 1e-25f : -1e-25f);
  return x;
}

}  // namespace

TEST_CASE(
    "nchw f32 with eps = 0 and std 1e-20 to 1e-30 matches the float64 reference (underflowing squares)") {
  check_all_stddevs<float>(groupnorm::layout::nchw, kNchwShapes);
}

TEST_CASE("nchw bf16 with eps = 0 and std 1e-20 to 1e-30 matches the float64 reference") {
  check_all_stddevs<groupnorm::bf16>(groupnorm::layout::nchw, kNchwShapes);
}

TEST_CASE(
    "nhwc f32 with eps = 0 and std 1e-20 to 1e-30 matches the float64 reference (underflowing squares)") {
  check_all_stddevs<float>(groupnorm::layout::nhwc, kNhwcShapes);
}

TEST_CASE("nhwc bf16 with eps = 0 and std 1e-20 to 1e-30 matches the float64 reference") {
  check_all_stddevs<groupnorm::bf16>(groupnorm::layout::nhwc, kNhwcShapes);
}

TEST_CASE("tiny deviations whose float sums cancel to exactly zero are not mistaken for a constant slice") {
  std::uint64_t seed = 1400;
  for (const shape& s : {shape{4, 16, 4096, 16}, shape{1, 2, 8192, 1}, shape{8, 4, 64, 4}}) {
    CAPTURE(s.name());
    check_tiny<float>(groupnorm::layout::nchw, s, cancelling_nchw(s, seed++));
  }
  for (const shape& s : {shape{1, 64, 64, 4}, shape{2, 320, 400, 32}}) {
    CAPTURE(s.name());
    check_tiny<float>(groupnorm::layout::nhwc, s, cancelling_nhwc(s, seed++));
  }
}

TEST_CASE("constant slices with eps = 0 keep zero variance: rstd is infinite as in the reference") {
  // The exact path must agree on a truly constant slice: the saved mean is the constant, and var 0 gives
  // rstd = +Inf, as 1 / sqrt(0) in the reference.
  for (groupnorm::layout layout : {groupnorm::layout::nchw, groupnorm::layout::nhwc}) {
    const shape s{2, 8, 5000, 4};
    const std::vector<float> x(s.elements(), 0.375f);
    groupnorm::problem p = make_problem(s, 0.0f);
    p.memory_layout = layout;
    std::vector<float> y(x.size()), mean(s.pairs()), rstd(s.pairs());
    groupnorm::tensors<float> t{.x = x, .y = y, .mean = mean, .rstd = rstd};
    groupnorm::plan(p).run(t);
    for (std::size_t k = 0; k < s.pairs(); ++k) {
      CHECK(mean[k] == 0.375f);
      CHECK(std::isinf(rstd[k]));
    }
  }
}
