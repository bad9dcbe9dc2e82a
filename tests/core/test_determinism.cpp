// Determinism: the output bits depend on nothing but the inputs — not on the arena's thread count (including
// the split-slice path, where one slice's chunks run on different threads), and not on the SIMD kernel
// family.
#include <cstdlib>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>

#include "test_util.hpp"

using namespace gn_test;

namespace {

constexpr int kThreadCounts[] = {1, 2, 3, 4, 8, 16};

// Runs `s` in arenas of every thread count (and in the caller's own arena) and requires identical bits.
void check_thread_independence(const shape& s, std::uint64_t seed) {
  CAPTURE(s.name());
  const std::vector<float> x = normal(s.elements(), seed, 0.25, 2.0);
  const std::vector<float> gamma = uniform(s.channels, seed + 1, -2.0, 2.0);
  const std::vector<float> beta = uniform(s.channels, seed + 2, -1.0, 1.0);
  const groupnorm::plan pl(make_problem(s));
  std::vector<float> first;
  for (int threads : kThreadCounts) {
    CAPTURE(threads);
    tbb::task_arena arena(threads);
    std::vector<float> y(x.size(), -777.0f), mean(s.pairs()), rstd(s.pairs());
    groupnorm::tensors<float> t{.x = x, .y = y, .gamma = gamma, .beta = beta, .mean = mean, .rstd = rstd};
    pl.run(t, &arena);
    // Append the statistics so they are compared bitwise too.
    y.insert(y.end(), mean.begin(), mean.end());
    y.insert(y.end(), rstd.begin(), rstd.end());
    if (first.empty()) {
      first = y;
    } else {
      CAPTURE(first_bit_difference(first, y));
      CHECK(same_bits(first, y));
    }
  }
  // nullptr: the caller's current arena (the default one, all hardware threads).
  std::vector<float> y(x.size());
  pl.run(x, y, gamma, beta);
  CHECK(std::memcmp(y.data(), first.data(), y.size() * sizeof(float)) == 0);
}

}  // namespace

TEST_CASE("bitwise identical output for arenas of 1 2 3 4 8 16 threads when there are many pairs") {
  check_thread_independence({2, 64, 33 * 31, 8}, 1);  // 16 pairs of 8184 elements: whole slices per task
  check_thread_independence({4, 64, 25, 32}, 2);      // 128 small slices, grouped into tasks
  check_thread_independence({3, 30, 1201, 10}, 3);    // odd sizes, tails everywhere
}

TEST_CASE(
    "bitwise identical output for all thread counts when batch times groups is below the thread count") {
  check_thread_independence({1, 8, 512 * 512, 1},
                            10);                     // B=1 G=1, 2M elements: one slice split over 64 chunks
  check_thread_independence({1, 4, 20000, 2}, 11);   // B=1 G=2: two slices of two chunks each
  check_thread_independence({1, 6, 30001, 3}, 12);   // B=1 G=3: three slices, the last chunk short
  check_thread_independence({1, 1, 100003, 1}, 13);  // a prime-length single slice
}

TEST_CASE("bitwise identical output for all thread counts when slices reach 256K elements with many pairs") {
  check_thread_independence({2, 4, 262147, 4}, 20);  // 8 pairs of 262147 elements: split path despite 8 pairs
}

TEST_CASE("bitwise identical output for all thread counts on the tiny path below 32768 elements") {
  check_thread_independence({1, 32, 64, 8}, 30);
  check_thread_independence({1, 2, 16383, 1}, 31);  // just under the serial threshold, one slice of 4 blocks
  check_thread_independence({3, 5, 7, 5}, 32);
}

TEST_CASE("a run nested inside the caller's own TBB tasks gives the same bits") {
  const shape s{1, 4, 40000, 1};
  const std::vector<float> x = normal(s.elements(), 40);
  const groupnorm::plan pl(make_problem(s));
  std::vector<float> serial(x.size());
  tbb::task_arena one(1);
  pl.run(x, serial, {}, {}, &one);
  tbb::task_arena arena(4);
  std::vector<std::vector<float>> outs(6, std::vector<float>(x.size()));
  arena.execute(
      [&] { tbb::parallel_for(std::size_t{0}, outs.size(), [&](std::size_t i) { pl.run(x, outs[i]); }); });
  for (const auto& y : outs) CHECK(same_bits(y, serial));
}

namespace {

// Runs one configuration with every supported kernel family and requires the scalar family's bits.
template <class T>
void check_isa_independence(const shape& s, bool residual, groupnorm::activation act, bool with_stats,
                            std::uint64_t seed) {
  CAPTURE(s.name());
  CAPTURE(residual);
  CAPTURE(static_cast<int>(act));
  const std::vector<T> x = encode<T>(normal(s.elements(), seed, 0.5, 2.0));
  const std::vector<T> r = encode<T>(normal(residual ? s.elements() : 0, seed + 1));
  const std::vector<float> gamma = uniform(s.channels, seed + 2, -2.0, 2.0);
  const std::vector<float> beta = uniform(s.channels, seed + 3, -1.0, 1.0);
  std::vector<unsigned char> scalar_bits;
  for (groupnorm::isa k : supported_isas()) {
    CAPTURE(groupnorm::to_string(k));
    groupnorm::problem p = make_problem(s);
    p.kernel_isa = k;
    p.residual = residual;
    p.fused_activation = act;
    p.data_type = storage<T>::type;
    const groupnorm::plan pl(p);
    CHECK(pl.selected_isa() == k);
    std::vector<T> y(x.size()), sum(residual ? x.size() : 0);
    std::vector<float> mean(with_stats ? s.pairs() : 0), rstd(with_stats ? s.pairs() : 0);
    groupnorm::tensors<T> t{
        .x = x, .y = y, .gamma = gamma, .beta = beta, .residual = r, .sum = sum, .mean = mean, .rstd = rstd};
    tbb::task_arena arena(3);
    pl.run(t, &arena);
    std::vector<unsigned char> bits(y.size() * sizeof(T) + sum.size() * sizeof(T) + 2 * mean.size() * 4);
    unsigned char* o = bits.data();
    std::memcpy(o, y.data(), y.size() * sizeof(T));
    o += y.size() * sizeof(T);
    if (!sum.empty()) std::memcpy(o, sum.data(), sum.size() * sizeof(T));
    o += sum.size() * sizeof(T);
    if (!mean.empty()) {
      std::memcpy(o, mean.data(), mean.size() * 4);
      std::memcpy(o + mean.size() * 4, rstd.data(), rstd.size() * 4);
    }
    if (k == groupnorm::isa::scalar)
      scalar_bits = bits;
    else
      CHECK(same_bits(bits, scalar_bits));
  }
}

}  // namespace

TEST_CASE("every supported kernel family gives the scalar family's bits for f32 f16 bf16 residual relu") {
  const std::vector<shape> shapes = {{1, 32, 64, 8},   {3, 10, 15, 5}, {2, 6, 4099, 3},
                                     {1, 2, 40001, 1}, {2, 12, 33, 4}, {1, 8, 512 * 64, 1}};
  if (!several_families_or_skip()) return;
  MESSAGE("kernel families compared: " << supported_isas().size());
  std::uint64_t seed = 50;
  for (const shape& s : shapes) {
    check_isa_independence<float>(s, false, groupnorm::activation::none, true, seed++);
    check_isa_independence<float>(s, true, groupnorm::activation::relu, true, seed++);
    check_isa_independence<groupnorm::f16>(s, false, groupnorm::activation::none, true, seed++);
    check_isa_independence<groupnorm::f16>(s, true, groupnorm::activation::relu, false, seed++);
    check_isa_independence<groupnorm::bf16>(s, false, groupnorm::activation::relu, true, seed++);
    check_isa_independence<groupnorm::bf16>(s, true, groupnorm::activation::none, false, seed++);
  }
}

TEST_CASE("unsupported kernel families are rejected by the plan instead of crashing") {
  for (groupnorm::isa k : {groupnorm::isa::avx2, groupnorm::isa::avx512, groupnorm::isa::neon}) {
    groupnorm::problem p = make_problem({1, 4, 4, 2});
    p.kernel_isa = k;
    if (groupnorm::isa_supported(k))
      CHECK(groupnorm::plan(p).selected_isa() == k);
    else
      CHECK_THROWS_AS(groupnorm::plan{p}, groupnorm::invalid_argument);
  }
  CHECK(groupnorm::isa_supported(groupnorm::isa::scalar));
  CHECK(groupnorm::plan(make_problem({1, 4, 4, 2})).selected_isa() != groupnorm::isa::automatic);
}

#if defined(__aarch64__)
constexpr bool kAarch64 = true;
#else
constexpr bool kAarch64 = false;
#endif

TEST_CASE("on aarch64 the neon family is supported and is the automatic choice" * doctest::skip(!kAarch64)) {
  CHECK(groupnorm::isa_supported(groupnorm::isa::neon));
  if (std::getenv("GROUPNORM_ISA") == nullptr)
    CHECK(groupnorm::plan(make_problem({1, 4, 4, 2})).selected_isa() == groupnorm::isa::neon);
}
