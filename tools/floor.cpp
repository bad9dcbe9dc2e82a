// `groupnorm floor`: hand-written minimal kernels that bound what any GroupNorm can reach on this machine,
// each timed against a memcpy of the same bytes in the same run (one thread). They are not GroupNorm: no
// validation, no dispatch, a shape fixed at compile time, no guard against a poor center or overflow. They
// keep only what a GroupNorm must do (read every element before writing any output of its group, and the
// arithmetic of the one-pass moments and the apply), so their ratios are floors for the library's ratios in
// `groupnorm bench` (docs/performance.md).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "cli.hpp"
#include "commands.hpp"
#include "timing.hpp"

namespace groupnorm::tool {
namespace {

constexpr const char* kUsage =
    "usage: groupnorm floor [--seconds S]\n"
    "\n"
    "  Times minimal hand-written kernels (AVX-512, one thread) against a memcpy of the same bytes:\n"
    "  tiny_b1_c32_8x8 (its moments, its apply, both with the per-group and per-channel constants), and\n"
    "  the memory pattern of sd_unet_8x8_c1280_b2 in NCHW (sum a 2560-element slice, then add and store\n"
    "  it) and in NHWC (sum a whole 320 KiB sample, then add and store it). Needs an AVX-512 CPU\n"
    "  (exit 2 without one).\n";

#if defined(__x86_64__)
#define GN_FLOOR_TARGET __attribute__((target("avx512f,fma"), noinline))

// tiny_b1_c32_8x8: 8 groups of 256 elements (4 channels x 64). Moments of the 8 groups interleaved (16
// independent add / fma chains, so the FP ports, not latency, bound them), around the group's first element.
constexpr int kGroups = 8, kGroupElems = 256, kChannels = 32, kSpatial = 64;

// Horizontal sum in four dependent adds, with vector-extension shuffles (GCC 12's masked shuffle intrinsics,
// and _mm512_reduce_add_ps, trip -Wuninitialized).
__attribute__((target("avx512f"))) inline float reduce(__m512 m) {
  using v16 = float __attribute__((vector_size(64)));
  v16 v = reinterpret_cast<v16>(m);
  v += __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15);
  v += __builtin_shufflevector(v, v, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7);
  v += __builtin_shufflevector(v, v, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
  v += __builtin_shufflevector(v, v, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1);
  return v[0];
}

GN_FLOOR_TARGET void tiny_moments(const float* x, double* e, double* q) {
  __m512 c[kGroups], ea[kGroups], qa[kGroups];
  for (int g = 0; g < kGroups; ++g) {
    c[g] = _mm512_set1_ps(x[g * kGroupElems]);
    ea[g] = qa[g] = _mm512_setzero_ps();
  }
  for (int v = 0; v < kGroupElems; v += 16)
    for (int g = 0; g < kGroups; ++g) {
      const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(x + g * kGroupElems + v), c[g]);
      ea[g] = _mm512_add_ps(ea[g], d);
      qa[g] = _mm512_fmadd_ps(d, d, qa[g]);
    }
  for (int g = 0; g < kGroups; ++g) {
    e[g] = reduce(ea[g]);
    q[g] = reduce(qa[g]);
  }
}

// y = fma(x - mean, scale, shift) with the per-channel constants already computed.
GN_FLOOR_TARGET void tiny_apply(const float* x, float* y, const float* mean, const float* scale,
                                const float* shift) {
  for (int c = 0; c < kChannels; ++c) {
    const __m512 m = _mm512_set1_ps(mean[c / (kChannels / kGroups)]), s = _mm512_set1_ps(scale[c]),
                 b = _mm512_set1_ps(shift[c]);
    for (int v = c * kSpatial; v < (c + 1) * kSpatial; v += 16)
      _mm512_storeu_ps(y + v, _mm512_fmadd_ps(_mm512_sub_ps(_mm512_loadu_ps(x + v), m), s, b));
  }
}

// The whole call: moments, mean and rstd in double, per-channel scale and shift, apply.
GN_FLOOR_TARGET void tiny_whole(const float* x, float* y, const float* gamma, const float* beta) {
  double e[kGroups], q[kGroups];
  tiny_moments(x, e, q);
  float mean_hi[kGroups], scale[kChannels], shift[kChannels];
  for (int g = 0; g < kGroups; ++g) {
    const double n = kGroupElems, mean = x[g * kGroupElems] + e[g] / n;
    const double rstd = 1.0 / std::sqrt((q[g] - e[g] * e[g] / n) / n + 1e-5);
    mean_hi[g] = static_cast<float>(mean);
    for (int c = g * (kChannels / kGroups); c < (g + 1) * (kChannels / kGroups); ++c) {
      scale[c] = static_cast<float>(gamma[c] * rstd);
      shift[c] = static_cast<float>(beta[c] - (mean - mean_hi[g]) * scale[c]);
    }
  }
  tiny_apply(x, y, mean_hi, scale, shift);
}

// Memory pattern of a GroupNorm with one FP operation per pass: sum `group` elements (four chains), then
// write x + that sum. For NCHW the group is a contiguous slice; for NHWC the whole sample must be read first.
GN_FLOOR_TARGET void sum_then_add(const float* x, float* y, std::size_t n, std::size_t group) {
  for (std::size_t g = 0; g < n; g += group) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (std::size_t i = g; i < g + group; i += 64) {
      a0 = _mm512_add_ps(a0, _mm512_loadu_ps(x + i));
      a1 = _mm512_add_ps(a1, _mm512_loadu_ps(x + i + 16));
      a2 = _mm512_add_ps(a2, _mm512_loadu_ps(x + i + 32));
      a3 = _mm512_add_ps(a3, _mm512_loadu_ps(x + i + 48));
    }
    const __m512 s = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
    for (std::size_t i = g; i < g + group; i += 16)
      _mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_loadu_ps(x + i), s));
  }
}

void report(const char* name, std::size_t elements, const timing& t, const timing& copy) {
  std::printf("%-44s %9zu %11.3f %10.3f %8.3f\n", name, elements, t.median_s * 1e6, copy.median_s * 1e6,
              t.median_s / copy.median_s);
}
#endif

int run_probes(double seconds) {
#if defined(__x86_64__)
  if (!__builtin_cpu_supports("avx512f")) {
    std::fputs("groupnorm floor: needs an AVX-512 CPU\n", stderr);
    return 2;
  }
  std::printf("%-44s %9s %11s %10s %8s\n", "probe (1 thread)", "elements", "median_us", "memcpy_us", "ratio");
  // 64-byte aligned inputs, as `groupnorm bench` uses, filled with sums of sines so nothing can be folded;
  // the outputs feed a checksum.
  auto data = [](std::size_t n) {
    aligned_vector v(n);
    for (std::size_t i = 0; i < n; ++i)
      v[i] = static_cast<float>(std::sin(0.37 * i) + 0.5 * std::sin(0.011 * i));
    return v;
  };
  double checksum = 0;
  {
    const std::size_t n = kGroups * kGroupElems;
    aligned_vector x = data(n), y(n);
    const std::vector<float> gamma(kChannels, 1.0f), beta(kChannels, 0.0f);
    const std::vector<float> mean(kGroups, 0.1f), scale(kChannels, 1.5f), shift(kChannels, 0.25f);
    double e[kGroups], q[kGroups];
    auto copy = [&] { std::memcpy(y.data(), x.data(), n * sizeof(float)); };
    const auto [tm, cm] = sample_pair([&] { tiny_moments(x.data(), e, q); }, copy, seconds);
    checksum += e[0] + q[7];
    report("tiny_b1_c32_8x8 moments only", n, tm, cm);
    const auto [ta, ca] = sample_pair(
        [&] { tiny_apply(x.data(), y.data(), mean.data(), scale.data(), shift.data()); }, copy, seconds);
    report("tiny_b1_c32_8x8 apply only (constants given)", n, ta, ca);
    const auto [tw, cw] =
        sample_pair([&] { tiny_whole(x.data(), y.data(), gamma.data(), beta.data()); }, copy, seconds);
    report("tiny_b1_c32_8x8 whole call", n, tw, cw);
    checksum += y[n - 1];
  }
  {
    const std::size_t n = 2 * 1280 * 64;  // sd_unet_8x8_c1280_b2
    aligned_vector x = data(n), y(n);
    auto copy = [&] { std::memcpy(y.data(), x.data(), n * sizeof(float)); };
    const auto [tn, cn] = sample_pair([&] { sum_then_add(x.data(), y.data(), n, 2560); }, copy, seconds);
    report("sd_unet_8x8 pattern, NCHW (2560-elem slices)", n, tn, cn);
    const auto [th, ch] = sample_pair([&] { sum_then_add(x.data(), y.data(), n, n / 2); }, copy, seconds);
    report("sd_unet_8x8 pattern, NHWC (320 KiB samples)", n, th, ch);
    checksum += y[n / 2];
  }
  std::printf("(checksum %g)\n", checksum);
  return 0;
#else
  static_cast<void>(seconds);  // parsed so the command line is the same everywhere; nothing to time here
  std::fputs("groupnorm floor: the probes are written for x86-64 with AVX-512\n", stderr);
  (void)seconds;
  return 2;
#endif
}

}  // namespace

std::function<int()> add_floor(CLI::App& parent) {
  CLI::App& app = *parent.add_subcommand(
      "floor", "minimal hand-written kernels that bound what GroupNorm can reach here");
  cli::describe(app, kUsage);
  auto seconds = std::make_shared<double>(0.25);
  app.add_option("--seconds", *seconds, "sampling time per probe (default 0.25)")
      ->option_text("S")
      ->check(cli::positive_number());
  return [seconds] { return run_probes(*seconds); };
}

}  // namespace groupnorm::tool
