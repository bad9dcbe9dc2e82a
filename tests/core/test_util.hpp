// Shared helpers of the core suite: data generation, running a plan, comparisons against the float64
// reference (tools/reference.hpp), and 16-bit storage conversions written independently of
// lib/simd/convert.hpp.
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "groupnorm/groupnorm.hpp"
#include "half.hpp"
#include "reference.hpp"
#include "skip.hpp"

namespace gn_test {

// A shape of the NCHW problem; `name` appears in failure messages.
struct shape {
  std::size_t batch, channels, spatial, groups;
  std::size_t elements() const { return batch * channels * spatial; }
  std::size_t pairs() const { return batch * groups; }
  std::size_t slice() const { return channels / groups * spatial; }
  std::string name() const {
    return std::to_string(batch) + "x" + std::to_string(channels) + "x" + std::to_string(spatial) +
           " G=" + std::to_string(groups);
  }
};

inline groupnorm::problem make_problem(const shape& s, float eps = 1e-5f) {
  groupnorm::problem p;
  p.batch = s.batch;
  p.channels = s.channels;
  p.spatial = s.spatial;
  p.num_groups = s.groups;
  p.epsilon = eps;
  return p;
}

// N(mean, stddev) data, rounded to float, reproducible from the seed.
inline std::vector<float> normal(std::size_t n, std::uint64_t seed, double mean = 0.0, double stddev = 1.0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> dist(mean, stddev);
  std::vector<float> v(n);
  for (float& f : v) f = static_cast<float>(dist(rng));
  return v;
}

inline std::vector<float> uniform(std::size_t n, std::uint64_t seed, double lo, double hi) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<float> v(n);
  for (float& f : v) f = static_cast<float>(dist(rng));
  return v;
}

// Runs plan(p) out of place into a fresh vector.
inline std::vector<float> run(const groupnorm::problem& p, const std::vector<float>& x,
                              const std::vector<float>& gamma = {}, const std::vector<float>& beta = {},
                              tbb::task_arena* arena = nullptr) {
  const groupnorm::plan pl(p);
  std::vector<float> y(x.size(), -777.0f);
  pl.run(x, y, gamma, beta, arena);
  return y;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// Index of the first element whose bits differ, or -1.
template <class T>
long first_bit_difference(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0) return static_cast<long>(i);
  return -1;
}

// Result of an element-wise tolerance comparison: how many elements failed and the first one, for the
// message.
struct compare_result {
  std::size_t failures = 0;
  std::size_t first = 0;
  double got = 0, want = 0, worst_excess = 0;
  std::string describe() const {
    return std::to_string(failures) + " elements out of tolerance; first at " + std::to_string(first) +
           ": got " + std::to_string(got) + ", expected " + std::to_string(want);
  }
};

// |y - ref| <= abs_tol + rel_tol * |ref| for every element (NaN never passes).
template <class Y>
compare_result compare(const std::vector<Y>& y, const std::vector<double>& ref, double abs_tol,
                       double rel_tol) {
  compare_result r;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double got = static_cast<double>(y[i]);
    const double tol = abs_tol + rel_tol * std::fabs(ref[i]);
    const double err = std::fabs(got - ref[i]);
    if (!(err <= tol)) {
      if (r.failures++ == 0) {
        r.first = i;
        r.got = got;
        r.want = ref[i];
      }
    }
  }
  return r;
}

// ---- 16-bit storage, independent of the library's converters
// -------------------------------------------------

// The shared scalar converters (tools/half.hpp), under the names the tests use.
inline std::uint16_t float_to_half_bits(float f) {
  return gn_half::float_to_f16(f);
}
inline float half_bits_to_float(std::uint16_t h) {
  return gn_half::f16_to_float(h);
}
inline std::uint16_t float_to_bf16_bits(float f) {
  return gn_half::float_to_bf16(f);
}
inline float bf16_bits_to_float(std::uint16_t b) {
  return gn_half::bf16_to_float(b);
}

// Unit in the last place of the storage type at |v| (the spacing of representable values around v).
inline double half_ulp_at(double v) {
  const double a = std::fabs(v);
  if (a < std::ldexp(1.0, -14)) return std::ldexp(1.0, -24);
  int e = 0;
  std::frexp(a, &e);
  return std::ldexp(1.0, e - 1 - 10);
}
inline double bf16_ulp_at(double v) {
  const double a = std::fabs(v);
  if (a < std::ldexp(1.0, -126)) return std::ldexp(1.0, -133);
  int e = 0;
  std::frexp(a, &e);
  return std::ldexp(1.0, e - 1 - 7);
}

template <class T>
struct storage;
template <>
struct storage<float> {  // identity, so typed helpers serve f32 too
  static float from(float f) { return f; }
  static float to(float f) { return f; }
  static constexpr groupnorm::dtype type = groupnorm::dtype::f32;
  static constexpr const char* name = "f32";
};
template <>
struct storage<groupnorm::f16> {
  static groupnorm::f16 from(float f) { return {float_to_half_bits(f)}; }
  static float to(groupnorm::f16 h) { return half_bits_to_float(h.bits); }
  static double ulp(double v) { return half_ulp_at(v); }
  static constexpr groupnorm::dtype type = groupnorm::dtype::f16;
  static constexpr const char* name = "f16";
};
template <>
struct storage<groupnorm::bf16> {
  static groupnorm::bf16 from(float f) { return {float_to_bf16_bits(f)}; }
  static float to(groupnorm::bf16 h) { return bf16_bits_to_float(h.bits); }
  static double ulp(double v) { return bf16_ulp_at(v); }
  static constexpr groupnorm::dtype type = groupnorm::dtype::bf16;
  static constexpr const char* name = "bf16";
};

template <class T>
std::vector<T> encode(const std::vector<float>& v) {
  std::vector<T> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = storage<T>::from(v[i]);
  return out;
}
template <class T>
std::vector<float> decode(const std::vector<T>& v) {
  std::vector<float> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = storage<T>::to(v[i]);
  return out;
}

// The kernel families this CPU and build can run (always includes scalar).
inline std::vector<groupnorm::isa> supported_isas() {
  std::vector<groupnorm::isa> out;
  for (groupnorm::isa k : groupnorm::known_isas())
    if (groupnorm::isa_supported(k)) out.push_back(k);
  return out;
}

// True when at least two families can run, so a cross-family comparison compares something; otherwise
// reports the skip (the caller returns).
inline bool several_families_or_skip() {
  const std::size_t n = supported_isas().size();
  if (n >= 2) return true;
  report_skip("this CPU and build run " + std::to_string(n) +
              " kernel family, nothing to compare across families");
  return false;
}

}  // namespace gn_test
