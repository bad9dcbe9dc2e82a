// Kernel families: the registry (one line per family), CPU support detected once per process, and the family
// a plan runs.
#include <array>
#include <cstddef>
#include <cstring>
#include <iterator>
#include <span>
#include <string>
#include <string_view>

#include "kernels/dispatch.hpp"
#include "plan/environment.hpp"

#if defined(GROUPNORM_HAVE_X86_KERNELS)
#include <cpuid.h>
#endif

namespace groupnorm::detail {

// Each family's kernels, defined in its kernels_<family>.cpp. Adding a family: that file and its compile
// flags (lib/CMakeLists.txt), its declaration here and its line in kFamilies (with a CPU check if it needs
// one).
const family_kernels& kernels_scalar() noexcept;
#if defined(GROUPNORM_HAVE_X86_KERNELS)
const family_kernels& kernels_avx2() noexcept;
const family_kernels& kernels_avx512() noexcept;
#endif
#if defined(GROUPNORM_HAVE_NEON_KERNELS)
const family_kernels& kernels_neon() noexcept;
#define GN_NEON(f) f
#else
#define GN_NEON(f) nullptr
#endif

namespace {

bool always() noexcept {
  return true;
}

#if defined(GROUPNORM_HAVE_X86_KERNELS)
// Each family needs every extension its file is compiled with (lib/CMakeLists.txt), since the compiler may
// use any of them anywhere in that file. F16C comes from CPUID leaf 1, ECX bit 29: clang 14's
// __builtin_cpu_supports does not know "f16c" (the fuzz build).
bool x86_avx2() noexcept {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
  return f16c && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
// -mavx512f/bw/vl/dq plus -mfma -mf16c, which no AVX-512 flag implies: the AVX2 family's checks too.
bool x86_avx512() noexcept {
  return x86_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}
#define GN_X86(f) f
#else
#define GN_X86(f) nullptr
#endif

struct family {
  isa id;
  const char* name;
  bool (*supported)() noexcept;                 // nullptr: not built for this target
  const family_kernels& (*kernels)() noexcept;  // nullptr: not built for this target
};

// In increasing order of preference: `automatic` picks the last one the CPU supports.
constexpr family kFamilies[] = {
    {isa::scalar, "scalar", always, kernels_scalar},
    {isa::avx2, "avx2", GN_X86(x86_avx2), GN_X86(kernels_avx2)},
    {isa::avx512, "avx512", GN_X86(x86_avx512), GN_X86(kernels_avx512)},
    {isa::neon, "neon", GN_NEON(always), GN_NEON(kernels_neon)},  // all aarch64
};
constexpr std::size_t kFamilyCount = std::size(kFamilies);

const family* find(isa k) noexcept {
  for (const family& f : kFamilies)
    if (f.id == k) return &f;
  return nullptr;
}

// What this CPU supports, detected at the first use: CPUID traps to the hypervisor on virtual machines (about
// 14 us each), so it must not run per plan.
struct cpu_support {
  bool supported[kFamilyCount];
  isa best;
};

const cpu_support& detected() noexcept {
  static const cpu_support cpu = [] {
    cpu_support c{};
    c.best = isa::scalar;
    for (std::size_t i = 0; i < kFamilyCount; ++i) {
      c.supported[i] =
          kFamilies[i].supported != nullptr && kFamilies[i].kernels != nullptr && kFamilies[i].supported();
      if (c.supported[i]) c.best = kFamilies[i].id;
    }
    return c;
  }();
  return cpu;
}

}  // namespace

bool known_isa(isa k) noexcept {
  return k == isa::automatic || find(k) != nullptr;
}

bool parse_isa_name(const char* name, isa& out) noexcept {
  if (std::strcmp(name, "automatic") == 0) {
    out = isa::automatic;
    return true;
  }
  for (const family& f : kFamilies)
    if (std::strcmp(name, f.name) == 0) {
      out = f.id;
      return true;
    }
  return false;
}

std::string isa_names() {
  std::string names = "automatic";
  for (const family& f : kFamilies) names += std::string(", ") + f.name;
  return names;
}

const backward_table& backward_kernels_for(isa family) noexcept {
  const struct family* f = find(family);
  return (f != nullptr && f->kernels != nullptr ? f->kernels() : kernels_scalar()).backward;
}

isa best_supported_isa() noexcept {
  return detected().best;
}

kernel_choice choose_kernels(isa requested) {
  const isa forced = process_environment().forced_isa;
  const isa chosen = requested != isa::automatic ? requested
                     : forced != isa::automatic  ? forced
                                                 : best_supported_isa();
  if (!isa_supported(chosen))
    throw invalid_argument(std::string("groupnorm: kernel isa '") + to_string(chosen) +
                           "' is not supported by this CPU or build");
  return {chosen, &find(chosen)->kernels().forward};
}

}  // namespace groupnorm::detail

namespace groupnorm {

const char* to_string(isa k) noexcept {
  if (k == isa::automatic) return "automatic";
  const detail::family* f = detail::find(k);
  return f ? f->name : "unknown";
}

isa parse_isa(std::string_view name) {
  isa k = isa::automatic;
  if (!detail::parse_isa_name(std::string(name).c_str(), k))
    throw invalid_argument("groupnorm: isa '" + std::string(name) + "' is unknown, expected one of " +
                           detail::isa_names());
  return k;
}

std::span<const isa> known_isas() noexcept {
  static constexpr auto ids = [] {
    std::array<isa, detail::kFamilyCount> a{};
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = detail::kFamilies[i].id;
    return a;
  }();
  return ids;
}

bool isa_supported(isa k) noexcept {
  if (k == isa::automatic) return true;
  const detail::family* f = detail::find(k);
  return f != nullptr && detail::detected().supported[f - detail::kFamilies];
}

}  // namespace groupnorm
