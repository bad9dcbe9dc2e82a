// Runtime choice of the kernel family: the best the CPU supports, or the one forced by GROUPNORM_ISA / the
// plan.
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels/kernels.hpp"

#if defined(GROUPNORM_HAVE_X86_KERNELS)
#include <cpuid.h>
namespace {
// F16C from CPUID leaf 1, ECX bit 29: clang 14's __builtin_cpu_supports does not know "f16c" (the fuzz
// build).
bool cpu_has_f16c() noexcept {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
}
}  // namespace
#endif

namespace groupnorm {

const char* to_string(isa k) noexcept {
  switch (k) {
    case isa::automatic:
      return "automatic";
    case isa::scalar:
      return "scalar";
    case isa::avx2:
      return "avx2";
    case isa::avx512:
      return "avx512";
  }
  return "unknown";
}

bool isa_supported(isa k) noexcept {
  switch (k) {
    case isa::automatic:
    case isa::scalar:
      return true;
#if defined(GROUPNORM_HAVE_X86_KERNELS)
    // Each family needs every extension its file is compiled with (lib/CMakeLists.txt), since the compiler
    // may use any of them anywhere in that file. kernels_avx2.cpp: -mavx2 -mfma -mf16c. kernels_avx512.cpp:
    // -mavx512f/bw/vl/dq (-mavx512f implies AVX2) plus -mfma -mf16c, which no AVX-512 flag implies: the
    // AVX2 family's checks and the AVX-512 ones.
    case isa::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
    case isa::avx512:
      return isa_supported(isa::avx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512dq");
#else
    case isa::avx2:
    case isa::avx512:
      return false;
#endif
  }
  return false;
}

namespace detail {

isa best_supported_isa() noexcept {
  if (isa_supported(isa::avx512)) return isa::avx512;
  if (isa_supported(isa::avx2)) return isa::avx2;
  return isa::scalar;
}

namespace {
isa isa_from_environment() {
  const char* env = std::getenv("GROUPNORM_ISA");
  if (env == nullptr || *env == '\0' || std::strcmp(env, "automatic") == 0) return best_supported_isa();
  for (isa k : {isa::scalar, isa::avx2, isa::avx512})
    if (std::strcmp(env, to_string(k)) == 0) return k;
  throw invalid_argument(std::string("GROUPNORM_ISA is '") + env +
                         "', expected one of automatic, scalar, avx2, avx512");
}
}  // namespace

const kernel_table& kernels_for(isa family) {
  const isa chosen = family == isa::automatic ? isa_from_environment() : family;
  if (!isa_supported(chosen))
    throw invalid_argument(std::string("kernel isa '") + to_string(chosen) +
                           "' is not supported by this CPU or build");
  switch (chosen) {
#if defined(GROUPNORM_HAVE_X86_KERNELS)
    case isa::avx512:
      return kernels_avx512();
    case isa::avx2:
      return kernels_avx2();
#endif
    default:
      return kernels_scalar();
  }
}

}  // namespace detail
}  // namespace groupnorm
