// groupnorm_activation_sweep: re-measures the accuracy of the fused SiLU and GELU
// (lib/kernels/activation.hpp) against float64 over every float in [-100, 100] (or every stride-th), the
// sweep behind the error bounds quoted in activation.hpp and asserted in tests/core/test_activation.cpp.
//
// usage: groupnorm_activation_sweep [--stride N] [--check]
//   --stride N  test every N-th float (default 1: all of them, about 2.2e9 per activation)
//   --check     exit 1 unless every error is within the activation's bound: SiLU 2 ulp (normal results) and
//               2 * 2^-149 (subnormal results), GELU 1 ulp and 2^-149
// The activations are compiled here with this file's target flags (the baseline family); every family gives
// the same bits, which tests/core/test_activation.cpp checks.
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "kernels/activation.hpp"

namespace {

using groupnorm::activation;
namespace simd = groupnorm::detail::simd;

struct worst {
  double normal_ulps = 0, subnormal_spacings = 0;
  float normal_at = 0, subnormal_at = 0;
  std::uint64_t count = 0;
};

double reference(activation a, double x) {
  return a == activation::silu ? x / (1.0 + std::exp(-x)) : 0.5 * x * std::erfc(-x / std::sqrt(2.0));
}

void record(worst& w, activation a, float x, float got) {
  const double want = reference(a, x);
  if (std::isnan(want) || std::isinf(want)) return;
  const double err = std::fabs(static_cast<double>(got) - want);
  const double a_want = std::fabs(want);
  ++w.count;
  if (a_want < std::numeric_limits<float>::min()) {
    const double spacings = err / std::ldexp(1.0, -149);
    if (spacings > w.subnormal_spacings) w.subnormal_spacings = spacings, w.subnormal_at = x;
    return;
  }
  int e = 0;
  std::frexp(a_want, &e);  // a_want = m 2^e, m in [0.5, 1): one float ulp is 2^(e - 24)
  const double ulps = err / std::ldexp(1.0, e - 24);
  if (ulps > w.normal_ulps) w.normal_ulps = ulps, w.normal_at = x;
}

template <activation A>
worst sweep(std::uint32_t stride) {
  worst w;
  float in[simd::kWidth], out[simd::kWidth];
  int filled = 0;
  auto flush = [&] {
    simd::store(out, groupnorm::detail::activate<A>(simd::load(in)));
    for (int j = 0; j < filled; ++j) record(w, A, in[j], out[j]);
    filled = 0;
  };
  // Both signs, from 0 to 100 in magnitude, by bit pattern: every float of the range in order.
  const std::uint32_t top = std::bit_cast<std::uint32_t>(100.0f);
  for (std::uint32_t sign : {0u, 0x80000000u}) {
    for (std::uint64_t m = 0; m <= top; m += stride) {
      in[filled++] = std::bit_cast<float>(static_cast<std::uint32_t>(m) | sign);
      if (filled == simd::kWidth) flush();
    }
    if (filled > 0) {
      for (int j = filled; j < simd::kWidth; ++j) in[j] = 0.0f;
      flush();
    }
  }
  return w;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint32_t stride = 1;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--stride" && i + 1 < argc) {
      char* end = nullptr;
      const unsigned long v = std::strtoul(argv[++i], &end, 10);
      if (*end != '\0' || v == 0 || v > 0xffffffffu) {
        std::fprintf(stderr, "groupnorm_activation_sweep: --stride '%s', expected a count >= 1\n", argv[i]);
        return 2;
      }
      stride = static_cast<std::uint32_t>(v);
    } else if (a == "--check") {
      check = true;
    } else {
      std::fprintf(stderr, "usage: groupnorm_activation_sweep [--stride N] [--check]\n");
      return 2;
    }
  }
  bool ok = true;
  // bound: in ulps (normal results) and in 2^-149 (subnormal results), see activation.hpp.
  const struct {
    const char* name;
    double bound;
    worst w;
  } results[] = {{"silu", 2.0, sweep<activation::silu>(stride)},
                 {"gelu", 1.0, sweep<activation::gelu>(stride)}};
  for (const auto& r : results) {
    std::printf(
        "%s: %llu floats in [-100, 100]: max %.3f ulp where the result is normal (x = %a), max %.3f * "
        "2^-149 where it is subnormal (x = %a)\n",
        r.name, static_cast<unsigned long long>(r.w.count), r.w.normal_ulps, r.w.normal_at,
        r.w.subnormal_spacings, r.w.subnormal_at);
    ok = ok && r.w.normal_ulps <= r.bound && r.w.subnormal_spacings <= r.bound && r.w.count > 0;
  }
  if (check && !ok) {
    std::printf("FAILED: an error above the activation's bound\n");
    return 1;
  }
  return 0;
}
