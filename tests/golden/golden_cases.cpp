// The golden suite's problems, their deterministic inputs (integer arithmetic only, so every platform makes
// the same bits) and the hashes of their outputs.
#include "golden_cases.hpp"

#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <type_traits>

namespace golden {
namespace {

using groupnorm::activation;
using groupnorm::dtype;
using groupnorm::layout;

// Each shape takes a different path through the plan and the kernels (lib/plan/tuning.hpp constants).
const shape kShapes[] = {
    // NCHW slices of 2560 elements (the small-slice kernels); NHWC rows of 1280 channels.
    {"unet_8x8_c1280_b2", 2, 1280, 64, 32, true},
    // NCHW slices of 4 moments blocks; NHWC 2 row blocks of 512 rows.
    {"unet_32x32_c128", 1, 128, 1024, 8, true},
    // One group (layer norm): an NCHW slice of 2 chunks; NHWC 16 channels, 4 row blocks.
    {"layernorm_64x64_c16", 1, 16, 4096, 1, true},
    // One channel per group (instance norm), no gamma / beta.
    {"instnorm_14x14_c64_b2", 2, 64, 196, 64, false},
    // Odd spatial size (vector tails); NHWC 24 channels packed into virtual rows of 48 lanes.
    {"fpn_35x29_c24_b2", 2, 24, 1015, 8, true},
    // NHWC rows wider than the kernels' channel tile, one group wider than the tile (merged in parts).
    {"wide_3x3_c4608_g2", 1, 4608, 9, 2, true},
    // NHWC rows wider than the tile, split into sub-tiles of whole groups.
    {"wide_1x5_c2560_g40", 1, 2560, 5, 40, true},
    {"tiny_8x8_c32", 1, 32, 64, 8, false},
    // Slices of 17 elements; NHWC 3 channels packed into 48 lanes.
    {"tails_17_c3_b3", 3, 3, 17, 3, true},
};

// splitmix64: a fixed, portable stream of 64-bit values.
struct rng {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
};

std::uint64_t fnv1a(const void* data, std::size_t bytes, std::uint64_t h = 0xcbf29ce484222325ull) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

template <class T>
std::string hash_of(const std::vector<T>& v) {
  if (v.empty()) return "-";
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx",
                static_cast<unsigned long long>(fnv1a(v.data(), v.size() * sizeof(T))));
  return buf;
}

// Significant bits after the binary point of the generated noise, per storage type: values below 8 in
// magnitude with these fractions are exact in the type (f16 keeps 11 significant bits, bf16 8), so no
// rounding is needed.
template <class T>
constexpr int kFractionBits = std::is_same_v<T, float>            ? 12
                              : std::is_same_v<T, groupnorm::f16> ? 7
                                                                  : 4;

// The float v, exactly representable in T, as T's bits.
template <class T>
T encode(float v) {
  if constexpr (std::is_same_v<T, float>) {
    return v;
  } else {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(v);
    if constexpr (std::is_same_v<T, groupnorm::bf16>) {
      if ((u & 0xffffu) != 0) std::abort();  // not exact in bf16: a bug in the generator
      return T{static_cast<std::uint16_t>(u >> 16)};
    } else {
      const std::uint32_t sign = (u >> 16) & 0x8000u, mag = u & 0x7fffffffu;
      if (mag == 0) return T{static_cast<std::uint16_t>(sign)};
      const int exponent = static_cast<int>(mag >> 23) - 127;
      if (exponent < -14 || exponent > 15 || (mag & 0x1fffu) != 0) std::abort();  // not a normal f16
      return T{static_cast<std::uint16_t>(sign | static_cast<std::uint32_t>(exponent + 15) << 10 |
                                          (mag & 0x7fffffu) >> 13)};
    }
  }
}

// Element i of a tensor in memory order: a per-(sample, channel) offset in {-3, -1.5, 0, 1.5, 3} (groups mix
// offsets, so some moments blocks need their second pass) plus uniform noise in [-2, 2).
template <class T>
std::vector<T> make_input(const case_spec& c, std::uint64_t seed) {
  const shape& s = c.s;
  const std::size_t n = s.batch * s.channels * s.spatial;
  std::vector<T> out(n);
  rng r{seed};
  constexpr int q = kFractionBits<T>;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t ch = c.memory_layout == layout::nhwc ? i % s.channels : i / s.spatial % s.channels;
    const std::size_t sample = i / (s.channels * s.spatial);
    const float offset = static_cast<float>(static_cast<int>((ch * 3 + sample) % 5) - 2) * 1.5f;
    const auto k = static_cast<std::int64_t>(r.next() >> (64 - (q + 2))) - (std::int64_t{1} << (q + 1));
    out[i] = encode<T>(offset + static_cast<float>(k) / static_cast<float>(1 << q));
  }
  return out;
}

template <class T>
std::string run_typed(const case_spec& c, groupnorm::isa family, tbb::task_arena& arena) {
  const shape& s = c.s;
  groupnorm::problem p;
  p.batch = s.batch;
  p.channels = s.channels;
  p.spatial = s.spatial;
  p.num_groups = s.groups;
  p.memory_layout = c.memory_layout;
  p.data_type = c.data_type;
  p.fused_activation = c.fused_activation;
  p.residual = c.residual != residual_mode::none;
  p.kernel_isa = family;
  const groupnorm::plan plan(p);

  const std::uint64_t seed = fnv1a(c.name().data(), c.name().size());
  const std::vector<T> x = make_input<T>(c, seed);
  std::vector<T> residual, sum;
  if (p.residual) residual = make_input<T>(c, seed ^ 0x5eed);
  if (c.residual == residual_mode::residual_and_sum) sum.resize(x.size());
  // gamma in [-7.5, 7.5] (zero for some channels), so activations see inputs out to their clamped tails.
  std::vector<float> gamma, beta;
  if (s.affine) {
    for (std::size_t ch = 0; ch < s.channels; ++ch) {
      gamma.push_back(static_cast<float>(static_cast<int>(ch * 7 % 13) - 6) * 1.25f);
      beta.push_back(static_cast<float>(static_cast<int>(ch * 5 % 9) - 4) * 0.25f);
    }
  }
  std::vector<T> y(x.size());
  std::vector<float> mean(s.batch * s.groups), rstd(s.batch * s.groups);
  plan.run(groupnorm::tensors<T>{.x = x,
                                 .y = y,
                                 .gamma = gamma,
                                 .beta = beta,
                                 .residual = residual,
                                 .sum = sum,
                                 .mean = mean,
                                 .rstd = rstd},
           &arena);
  return hash_of(y) + ' ' + hash_of(mean) + ' ' + hash_of(rstd) + ' ' + hash_of(sum);
}

}  // namespace

std::string case_spec::name() const {
  static const char* const kResidual[] = {"plain", "residual", "residual+sum"};
  char dims[96];
  std::snprintf(dims, sizeof dims, "%zux%zux%zu_g%zu", s.batch, s.channels, s.spatial, s.groups);
  static const char* const kLayout[] = {"nchw", "nhwc"};
  static const char* const kDtype[] = {"f32", "f16", "bf16"};
  static const char* const kActivation[] = {"none", "relu", "silu", "gelu"};
  return std::string(s.name) + '_' + dims + '/' + kLayout[static_cast<int>(memory_layout)] + '/' +
         kDtype[static_cast<int>(data_type)] + '/' + kActivation[static_cast<int>(fused_activation)] + '/' +
         kResidual[static_cast<int>(residual)];
}

std::vector<case_spec> suite() {
  std::vector<case_spec> out;
  for (const shape& s : kShapes)
    for (layout l : {layout::nchw, layout::nhwc})
      for (dtype d : {dtype::f32, dtype::f16, dtype::bf16})
        for (activation a : {activation::none, activation::relu, activation::silu, activation::gelu})
          for (residual_mode r :
               {residual_mode::none, residual_mode::residual, residual_mode::residual_and_sum})
            out.push_back({s, l, d, a, r});
  return out;
}

std::string run_case(const case_spec& c, groupnorm::isa family, tbb::task_arena& arena) {
  switch (c.data_type) {
    case dtype::f16:
      return run_typed<groupnorm::f16>(c, family, arena);
    case dtype::bf16:
      return run_typed<groupnorm::bf16>(c, family, arena);
    default:
      return run_typed<float>(c, family, arena);
  }
}

bool parse_isa(const std::string& name, groupnorm::isa& out) {
  for (int i = 0; i < 16; ++i) {
    if (name == groupnorm::to_string(static_cast<groupnorm::isa>(i))) {
      out = static_cast<groupnorm::isa>(i);
      return true;
    }
  }
  return false;
}

std::string selected_name(groupnorm::isa family) {
  groupnorm::problem p;
  p.channels = 1;
  p.num_groups = 1;
  p.kernel_isa = family;
  return groupnorm::to_string(groupnorm::plan(p).selected_isa());
}

}  // namespace golden
