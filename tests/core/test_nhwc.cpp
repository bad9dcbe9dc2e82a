// Channels-last (layout::nhwc): x is (batch, spatial, channels) contiguous. Every case compares against the
// float64 NCHW reference (tools/reference.hpp) by transposing in the test, or checks bitwise identities.
//
// f32 tolerance |y - ref| <= 1e-5 * (1 + |ref|): y is computed in float as (v - mean_hi) * scale + shift with
// scale = float(gamma * rstd) and shift = float(beta - (mean - mean_hi) * scale) — a few float roundings,
// each
// <= 6e-8 relative to |y| + |beta|; the statistics are merged in double from per-lane float sums of at most a
// few hundred deviations per lane (relative error of var ~1e-6 at worst, so ~5e-7 on rstd and on y). The
// bound is ~10x above the worst of these, and ~100x below an error that a wrong mean, variance or channel
// mapping causes.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#include <oneapi/tbb/task_arena.h>

#include "test_util.hpp"

using namespace gn_test;

namespace {

constexpr double kTol = 1e-5;

groupnorm::problem nhwc_problem(const shape& s, float eps = 1e-5f) {
  groupnorm::problem p = make_problem(s, eps);
  p.memory_layout = groupnorm::layout::nhwc;
  return p;
}

// (B, S, C) -> (B, C, S) and back.
template <class T>
std::vector<T> to_nchw(const std::vector<T>& v, const shape& s) {
  std::vector<T> out(v.size());
  for (std::size_t b = 0; b < s.batch; ++b)
    for (std::size_t i = 0; i < s.spatial; ++i)
      for (std::size_t c = 0; c < s.channels; ++c)
        out[(b * s.channels + c) * s.spatial + i] = v[(b * s.spatial + i) * s.channels + c];
  return out;
}
template <class T>
std::vector<T> to_nhwc(const std::vector<T>& v, const shape& s) {
  std::vector<T> out(v.size());
  for (std::size_t b = 0; b < s.batch; ++b)
    for (std::size_t i = 0; i < s.spatial; ++i)
      for (std::size_t c = 0; c < s.channels; ++c)
        out[(b * s.spatial + i) * s.channels + c] = v[(b * s.channels + c) * s.spatial + i];
  return out;
}

// Reference for NHWC data, in NHWC order.
std::vector<double> nhwc_reference(const std::vector<float>& x, const shape& s,
                                   const std::vector<float>& gamma = {}, const std::vector<float>& beta = {},
                                   double eps = 1e-5,
                                   std::vector<groupnorm::reference::stats>* st = nullptr) {
  const std::vector<float> xc = to_nchw(x, s);
  return to_nhwc(groupnorm::reference::group_norm(xc.data(), s.batch, s.channels, s.spatial, s.groups, eps,
                                                  gamma, beta, st),
                 s);
}

std::vector<float> run_nhwc(const groupnorm::problem& p, const std::vector<float>& x,
                            const std::vector<float>& gamma = {}, const std::vector<float>& beta = {},
                            tbb::task_arena* arena = nullptr) {
  const groupnorm::plan pl(p);
  std::vector<float> y(x.size(), -777.0f);
  pl.run(x, y, gamma, beta, arena);
  return y;
}

// Shapes covering every code path of the NHWC kernels: one lane per channel (C % 16 == 0), packed virtual
// rows (small C not a multiple of 16: C = 1, 6, 7, 24), per-row lanes with a scalar tail (C = 300), sub-tiles
// of whole groups (C = 2500 > 2048), parts of one group (C = 4500, G = 1), spatial 1, rows not a multiple of
// the block / chunk rows, batch > 1, G = 1 and G = C.
const std::vector<shape> kShapes = {
    {1, 1, 100, 1},   {2, 6, 37, 3},    {1, 7, 1000, 7},  {2, 24, 999, 6},   {1, 320, 300, 32},
    {3, 64, 1, 64},   {1, 64, 1, 1},    {3, 16, 5001, 1}, {2, 40, 777, 40},  {1, 48, 300, 4},
    {1, 300, 77, 3},  {1, 2500, 21, 5}, {1, 4500, 9, 1},  {2, 32, 70001, 8}, {1, 1, 131073, 1},
    {2, 6, 20000, 2}, {2, 6, 5, 3},  // packed, a block shorter than one virtual row: center from the first
                                     // element
};

void check_close(const std::vector<float>& y, const std::vector<double>& ref, double tol = kTol) {
  const compare_result r = compare(y, ref, tol, tol);
  CHECK_MESSAGE(r.failures == 0, r.describe());
}

}  // namespace

TEST_CASE("nhwc matches the float64 reference on many shapes, with and without gamma and beta") {
  std::uint64_t seed = 100;
  for (const shape& s : kShapes) {
    CAPTURE(s.name());
    const std::vector<float> x = normal(s.elements(), seed++, 0.5, 2.0);
    check_close(run_nhwc(nhwc_problem(s), x), nhwc_reference(x, s));
    const std::vector<float> gamma = normal(s.channels, seed++, 1.0, 0.5),
                             beta = normal(s.channels, seed++, 0.0, 1.0);
    check_close(run_nhwc(nhwc_problem(s), x, gamma, beta), nhwc_reference(x, s, gamma, beta));
  }
}

TEST_CASE("nhwc keeps two-pass accuracy at a large offset (mean 1e4, std 1): xhat within 1e-4") {
  std::uint64_t seed = 200;
  for (const shape& s : {shape{1, 64, 4096, 1}, shape{2, 320, 300, 32}, shape{1, 6, 9000, 3},
                         shape{1, 300, 100, 3}, shape{1, 4500, 9, 1}}) {
    CAPTURE(s.name());
    const std::vector<float> x = normal(s.elements(), seed++, 1e4, 1.0);
    check_close(run_nhwc(nhwc_problem(s), x), nhwc_reference(x, s), 1e-4);
    // Per-channel offsets that differ within a group (+-1e4 around the group mean): still the exact group
    // variance.
    std::vector<float> xo = x;
    for (std::size_t i = 0; i < xo.size(); ++i) xo[i] += (i % s.channels % 2 ? 5.0f : -5.0f);
    check_close(run_nhwc(nhwc_problem(s), xo), nhwc_reference(xo, s), 1e-4);
  }
}

namespace {

// Sets every channel of the rows the NHWC moments sample for their block centers to `value`. Mirrors the plan
// (lib/plan/partition.cpp partition_nhwc, lib/plan/tuning.hpp) and lib/kernels/moments_nhwc.hpp: rows of C
// channels are packed into virtual rows of lcm(C, 16) lanes when C % 16 != 0 and lcm(C, 16) <= 256; blocks
// hold 65536 / width rows clamped to [128, 1024 * reps] (a multiple of the rows per virtual row), width = the
// widest sub-tile (C up to 2048); a block's center is sampled from virtual rows 0, step, ..., 15 * step with
// step = max(1, virtual rows / 16).
void mark_sampled_rows(std::vector<float>& x, const shape& s, float value) {
  const std::size_t C = s.channels, cpg = s.channels / s.groups;
  std::size_t width = C;
  if (C > 2048) width = cpg <= 2048 ? 2048 / cpg * cpg : 2048;
  std::size_t reps = 1;
  if (C % 16 != 0 && C <= 256 && std::lcm(C, std::size_t{16}) <= 256) reps = std::lcm(C, std::size_t{16}) / C;
  const std::size_t rows = std::clamp<std::size_t>((65536 + width - 1) / width, 128, 1024 * reps);
  const std::size_t block = (rows + reps - 1) / reps * reps;
  for (std::size_t b = 0; b < s.batch; ++b)
    for (std::size_t row0 = 0; row0 < s.spatial; row0 += block) {
      const std::size_t nr = std::min(block, s.spatial - row0), vrows = nr / reps;
      const std::size_t step = std::max<std::size_t>(1, vrows / 16);
      for (std::size_t j = 0; j < std::min<std::size_t>(16, vrows); ++j)
        for (std::size_t r = 0; r < reps; ++r)
          for (std::size_t c = 0; c < C; ++c) x[(b * s.spatial + row0 + j * step * reps + r) * C + c] = value;
    }
}

}  // namespace

TEST_CASE(
    "nhwc blocks whose sampled rows miss the mean take the refined center: 1e-5, same bits everywhere") {
  // The rows each block samples for its center sit 60 std above the rest, so every block's sampled center is
  // far off its mean and must be refined (d^2 > var / 3). Shapes: one lane per channel, in the units schedule
  // and (first shape, B = 1, G = 1, many rows) the row-split one; packed virtual rows with a remainder (C =
  // 6); scalar tail lanes (C = 300); tiles that are parts of one group, over several blocks (C = 4500, G =
  // 1); and groups where only some segments are refined (the last shape marks the sampled rows of even groups
  // only).
  std::uint64_t seed = 260;
  const std::vector<shape> shapes = {{1, 16, 65536, 1}, {2, 16, 4096, 16}, {1, 6, 2741, 3},
                                     {1, 300, 500, 3},  {1, 4500, 300, 1}, {2, 64, 4096, 4}};
  for (const shape& s : shapes) {
    CAPTURE(s.name());
    std::vector<float> x = normal(s.elements(), seed++, 1e3, 1.0);
    std::vector<float> marked = x;
    mark_sampled_rows(marked, s, 1060.0f);
    if (s.name() == shape{2, 64, 4096, 4}.name()) {  // only even groups' channels
      for (std::size_t i = 0; i < x.size(); ++i)
        if ((i % s.channels) / (s.channels / s.groups) % 2 == 0) x[i] = marked[i];
    } else {
      x = marked;
    }
    const std::vector<float> y = run_nhwc(nhwc_problem(s, 0.0f), x);
    check_close(y, nhwc_reference(x, s, {}, {}, 0.0));
    for (groupnorm::isa k : supported_isas()) {
      CAPTURE(groupnorm::to_string(k));
      groupnorm::problem p = nhwc_problem(s, 0.0f);
      p.kernel_isa = k;
      CHECK(same_bits(run_nhwc(p, x), y));
    }
    for (int threads : {1, 2, 3, 4}) {
      CAPTURE(threads);
      tbb::task_arena arena(threads);
      CHECK(same_bits(run_nhwc(nhwc_problem(s, 0.0f), x, {}, {}, &arena), y));
    }
  }
}

TEST_CASE("nhwc saved mean and rstd, residual and sum output match the reference") {
  std::uint64_t seed = 300;
  for (const shape& s :
       {shape{2, 6, 37, 3}, shape{1, 320, 300, 32}, shape{2, 300, 50, 3}, shape{1, 64, 20000, 1}}) {
    CAPTURE(s.name());
    const std::vector<float> x = normal(s.elements(), seed++, 3.0, 2.0),
                             res = normal(s.elements(), seed++, -1.0, 1.0);
    const std::vector<float> gamma = normal(s.channels, seed++, 1.0, 0.5),
                             beta = normal(s.channels, seed++, 0.0, 1.0);
    std::vector<float> sum_in(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) sum_in[i] = x[i] + res[i];  // float rounding, as the library
    std::vector<groupnorm::reference::stats> st;
    const std::vector<double> ref = nhwc_reference(sum_in, s, gamma, beta, 1e-5, &st);

    groupnorm::problem p = nhwc_problem(s);
    p.residual = true;
    std::vector<float> y(x.size()), sum(x.size()), mean(s.pairs()), rstd(s.pairs());
    groupnorm::tensors<float> t;
    t.x = x;
    t.residual = res;
    t.y = y;
    t.sum = sum;
    t.gamma = gamma;
    t.beta = beta;
    t.mean = mean;
    t.rstd = rstd;
    groupnorm::plan(p).run(t);
    check_close(y, ref);
    CHECK(same_bits(sum, sum_in));
    for (std::size_t q = 0; q < s.pairs(); ++q) {
      CAPTURE(q);
      const double want_rstd = 1.0 / std::sqrt(st[q].var + 1e-5);
      CHECK(std::fabs(mean[q] - st[q].mean) <= kTol * (1.0 + std::fabs(st[q].mean)));
      CHECK(std::fabs(rstd[q] - want_rstd) <= kTol * want_rstd);
    }
    // Without the sum output: the same y bits.
    std::vector<float> y2(x.size());
    groupnorm::tensors<float> t2;
    t2.x = x;
    t2.residual = res;
    t2.y = y2;
    t2.gamma = gamma;
    t2.beta = beta;
    groupnorm::plan(p).run(t2);
    CHECK(same_bits(y, y2));
  }
}

TEST_CASE("nhwc fused relu, silu and gelu match the activated float64 reference") {
  std::uint64_t seed = 400;
  for (const shape& s : {shape{2, 6, 37, 3}, shape{1, 320, 300, 32}, shape{1, 300, 50, 3}}) {
    CAPTURE(s.name());
    const std::vector<float> x = normal(s.elements(), seed++, 0.0, 2.0);
    const std::vector<float> gamma = normal(s.channels, seed++, 1.0, 1.0),
                             beta = normal(s.channels, seed++, 0.0, 1.0);
    const std::vector<double> ref = nhwc_reference(x, s, gamma, beta);
    for (groupnorm::activation a :
         {groupnorm::activation::relu, groupnorm::activation::silu, groupnorm::activation::gelu}) {
      CAPTURE(static_cast<int>(a));
      groupnorm::problem p = nhwc_problem(s);
      p.fused_activation = a;
      std::vector<double> want(ref.size());
      for (std::size_t i = 0; i < ref.size(); ++i) {
        const double v = ref[i];
        want[i] = a == groupnorm::activation::relu   ? std::max(0.0, v)
                  : a == groupnorm::activation::silu ? v / (1.0 + std::exp(-v))
                                                     : 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
      }
      // relu is exact on top of the affine; silu / gelu add a few ulp on values of the same size as y.
      check_close(run_nhwc(p, x, gamma, beta), want, a == groupnorm::activation::relu ? kTol : 2 * kTol);
    }
  }
}

TEST_CASE_TEMPLATE("nhwc f16 and bf16 storage are within one rounding of the reference", T, groupnorm::f16,
                   groupnorm::bf16) {
  std::uint64_t seed = 500;
  for (const shape& s :
       {shape{2, 6, 37, 3}, shape{1, 320, 300, 32}, shape{1, 300, 50, 3}, shape{1, 64, 20000, 1}}) {
    CAPTURE(s.name());
    const std::vector<T> x = encode<T>(normal(s.elements(), seed++, 1.0, 2.0));
    const std::vector<float> gamma = normal(s.channels, seed++, 1.0, 0.5),
                             beta = normal(s.channels, seed++, 0.0, 1.0);
    const std::vector<double> ref = nhwc_reference(decode(x), s, gamma, beta);
    groupnorm::problem p = nhwc_problem(s);
    p.data_type = storage<T>::type;
    std::vector<T> y(x.size());
    groupnorm::tensors<T> t{.x = x, .y = y, .gamma = gamma, .beta = beta};
    groupnorm::plan(p).run(t);
    std::size_t bad = 0;
    for (std::size_t i = 0; i < y.size(); ++i) {
      // One rounding of the storage type (half an ulp) plus the f32 computation's error.
      const double tol = storage<T>::ulp(ref[i]) * 0.5 + kTol * (1.0 + std::fabs(ref[i]));
      if (!(std::fabs(static_cast<double>(storage<T>::to(y[i])) - ref[i]) <= tol) && bad++ == 0)
        FAIL_CHECK("element " << i << ": got " << storage<T>::to(y[i]) << ", want " << ref[i]);
    }
    CHECK(bad == 0);
  }
}

TEST_CASE("nhwc output is bitwise identical in arenas of 1, 2, 3, 4, 8 and 16 threads") {
  std::uint64_t seed = 600;
  // B = 1, G = 1 (LayerNorm: rows split over chunks), a row-split SD shape, many units, packed rows, a
  // residual + silu + bf16 run with saved statistics.
  for (const shape& s : {shape{1, 64, 128 * 128, 1}, shape{1, 320, 64 * 64, 32}, shape{4, 64, 56 * 56, 64},
                         shape{1, 6, 100000, 3}, shape{2, 300, 400, 3}}) {
    CAPTURE(s.name());
    const std::vector<float> x = normal(s.elements(), seed++, 0.5, 2.0), res = normal(s.elements(), seed++);
    const std::vector<float> gamma = normal(s.channels, seed++, 1.0, 0.5), beta = normal(s.channels, seed++);
    std::vector<float> first, first_stats;
    std::vector<groupnorm::bf16> first16;
    for (int threads : {1, 2, 3, 4, 8, 16}) {
      CAPTURE(threads);
      tbb::task_arena arena(threads);
      const std::vector<float> y = run_nhwc(nhwc_problem(s), x, gamma, beta, &arena);

      groupnorm::problem p = nhwc_problem(s);
      p.data_type = groupnorm::dtype::bf16;
      p.residual = true;
      p.fused_activation = groupnorm::activation::silu;
      const std::vector<groupnorm::bf16> x16 = encode<groupnorm::bf16>(x), r16 = encode<groupnorm::bf16>(res);
      std::vector<groupnorm::bf16> y16(x.size());
      std::vector<float> stats(2 * s.pairs());
      groupnorm::tensors<groupnorm::bf16> t;
      t.x = x16;
      t.residual = r16;
      t.y = y16;
      t.gamma = gamma;
      t.beta = beta;
      t.mean = std::span<float>(stats).first(s.pairs());
      t.rstd = std::span<float>(stats).last(s.pairs());
      groupnorm::plan(p).run(t, &arena);
      if (first.empty()) {
        first = y;
        first16 = y16;
        first_stats = stats;
        continue;
      }
      CHECK_MESSAGE(same_bits(y, first), "first difference at " << first_bit_difference(y, first));
      CHECK(same_bits(y16, first16));
      CHECK(same_bits(stats, first_stats));
    }
  }
}

TEST_CASE("nhwc output is bitwise identical on every supported isa") {
  if (!several_families_or_skip()) return;
  std::uint64_t seed = 700;
  const std::vector<groupnorm::isa> isas = supported_isas();
  for (const shape& s : kShapes) {
    CAPTURE(s.name());
    const std::vector<float> x = normal(s.elements(), seed++, 0.5, 2.0), res = normal(s.elements(), seed++);
    const std::vector<float> gamma = normal(s.channels, seed++, 1.0, 0.5), beta = normal(s.channels, seed++);
    std::vector<float> first;
    std::vector<groupnorm::f16> first16;
    for (groupnorm::isa k : isas) {
      CAPTURE(groupnorm::to_string(k));
      groupnorm::problem p = nhwc_problem(s);
      p.kernel_isa = k;
      const std::vector<float> y = run_nhwc(p, x, gamma, beta);
      p.data_type = groupnorm::dtype::f16;
      p.residual = true;
      p.fused_activation = groupnorm::activation::gelu;
      const std::vector<groupnorm::f16> x16 = encode<groupnorm::f16>(x), r16 = encode<groupnorm::f16>(res);
      std::vector<groupnorm::f16> y16(x.size()), sum16(x.size());
      groupnorm::tensors<groupnorm::f16> t;
      t.x = x16;
      t.residual = r16;
      t.y = y16;
      t.sum = sum16;
      t.gamma = gamma;
      t.beta = beta;
      groupnorm::plan(p).run(t);
      if (first.empty()) {
        first = y;
        first16 = y16;
        continue;
      }
      CHECK_MESSAGE(same_bits(y, first), "first difference at " << first_bit_difference(y, first));
      CHECK(same_bits(y16, first16));
    }
  }
}

TEST_CASE("nhwc in place equals out of place bitwise") {
  std::uint64_t seed = 800;
  tbb::task_arena arena(4);
  for (const shape& s : kShapes) {
    CAPTURE(s.name());
    const std::vector<float> x = normal(s.elements(), seed++, 0.5, 2.0);
    const std::vector<float> gamma = normal(s.channels, seed++, 1.0, 0.5), beta = normal(s.channels, seed++);
    const groupnorm::plan pl(nhwc_problem(s));
    std::vector<float> y(x.size()), xy = x;
    pl.run(x, y, gamma, beta, &arena);
    pl.run_inplace(xy, gamma, beta, &arena);
    CHECK(same_bits(xy, y));
  }
}

TEST_CASE("nhwc agrees with nchw on the transposed tensor") {
  std::uint64_t seed = 900;
  for (const shape& s : {shape{2, 320, 300, 32}, shape{1, 6, 999, 3}, shape{1, 64, 20000, 1}}) {
    CAPTURE(s.name());
    const std::vector<float> x = normal(s.elements(), seed++, 0.5, 2.0);
    const std::vector<float> gamma = normal(s.channels, seed++, 1.0, 0.5), beta = normal(s.channels, seed++);
    const std::vector<float> nchw = to_nhwc(run(make_problem(s), to_nchw(x, s), gamma, beta), s);
    const std::vector<float> nhwc = run_nhwc(nhwc_problem(s), x, gamma, beta);
    std::vector<double> want(nchw.begin(), nchw.end());
    check_close(nhwc, want);
  }
}

TEST_CASE("nhwc NaN or Inf in one group makes that group NaN and leaves the other groups exact") {
  const shape s{2, 12, 300, 3};
  const std::vector<float> x = normal(s.elements(), 1000, 0.5, 2.0);
  const std::vector<double> ref = nhwc_reference(x, s);
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    CAPTURE(bad);
    std::vector<float> xb = x;
    const std::size_t n = 1, g = 2, row = 123, c = g * 4 + 1;  // sample 1, group 2
    xb[(n * s.spatial + row) * s.channels + c] = bad;
    std::vector<float> y(x.size()), rstd(s.pairs());
    groupnorm::tensors<float> t{.x = xb, .y = y, .rstd = rstd};
    groupnorm::plan(nhwc_problem(s)).run(t);
    for (std::size_t q = 0; q < s.pairs(); ++q) CHECK(std::isnan(rstd[q]) == (q == n * s.groups + g));
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < y.size(); ++i) {
      const bool in_bad = i / (s.spatial * s.channels) == n && i % s.channels / 4 == g;
      if (in_bad ? !std::isnan(y[i]) : !(std::fabs(y[i] - ref[i]) <= kTol * (1.0 + std::fabs(ref[i]))))
        ++wrong;
    }
    CHECK(wrong == 0);
  }
}

TEST_CASE("nhwc with zero batch or zero spatial is a no-op") {
  for (const shape& s : {shape{0, 8, 10, 2}, shape{3, 8, 0, 2}}) {
    CAPTURE(s.name());
    const groupnorm::plan pl(nhwc_problem(s));
    std::vector<float> x, y;
    pl.run(x, y);
    CHECK(pl.element_count() == 0);
  }
}
