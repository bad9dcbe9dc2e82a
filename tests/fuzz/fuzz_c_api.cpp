// libFuzzer target: the C ABI (gn_group_norm_f32 and gn_group_norm_ex) with arbitrary small sizes, groups,
// eps bits, null / present gamma and beta, aliasing and overlap choices, storage types, layouts, activations,
// residual and saved statistics, and num_threads in -1..4, on small heap buffers (so ASan sees every stray
// byte).
//
// Oracle:
//  * the arguments the contract rejects (zero channels / groups, groups not dividing channels, eps NaN / Inf
//  /
//    negative, num_threads < 0, null x or y with data, any overlap but y == x, sizes overflowing) must give
//    GN_INVALID_ARGUMENT; every non-GN_OK status must leave y, x (in place), sum, mean and rstd
//    byte-identical;
//  * valid arguments must give GN_OK (or GN_INVALID_ARGUMENT naming a feature "not supported" yet);
//  * a GN_OK output is compared with the float64 reference of tools/reference.hpp, per element, within
//        tol = (K + 8) u |gamma_c| rstd D + 4 u (|beta_c| + |y_ref|)   (+ the 16-bit storage rounding)
//    u = 2^-24, D = max |v - mean| over the slice, K = 512. Why: the library's moments are float lane sums of
//    deviations from a block centre, corrected and merged in double, so the mean is off by at most about
//    (elements per lane + tree depth) u D <= K u D and the variance by K u relatively; the apply rounds
//    v - mean_hi, scale, the product and the sum once each. An indexing or grouping error is off by O(|y|).
//  * the comparison is skipped (and only the NaN / finiteness rules below are checked) where the float
//    arithmetic the contract allows cannot be accurate: non-finite x, gamma or beta; var + eps < 2^-100 (the
//    squares underflow, or var = eps = 0 makes y = 0 / 0); D > 2^60 (squared deviations overflow float
//    lanes); |gamma| rstd > 2^100 (the float scale overflows) or below 2^-126 (it is subnormal); |y_ref|
//    beyond the storage type's range;
//  * NaN rule: a slice whose inputs contain NaN or Inf gives NaN everywhere in it (the reference's var is
//  NaN),
//    for every activation, and its saved mean / rstd are NaN. Finite rule: finite x, gamma, beta with
//    eps >= 2^-100, D <= 2^60 and a bound |gamma| D / sqrt(eps) + |beta| < 2^100 give finite outputs.
// Any violation aborts (libFuzzer reports a crash and keeps the input).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "groupnorm/groupnorm.h"
#include "half.hpp"
#include "reference.hpp"

namespace {

constexpr double kU = 0x1p-24;
constexpr double kK = 512;

[[noreturn]] void die(const char* what, double a = 0, double b = 0, std::size_t i = 0) {
  std::fprintf(stderr, "fuzz_c_api: %s (%.9g vs %.9g at %zu); last error: %s\n", what, a, b, i,
               gn_last_error());
  std::abort();
}

struct region {
  std::uintptr_t b, e;
};
bool overlap(region a, region c) {
  return a.b != a.e && c.b != c.e && a.b < c.e && c.b < a.e;
}
region reg(const void* p, std::size_t bytes) {
  const auto b = reinterpret_cast<std::uintptr_t>(p);
  return {b, p ? b + bytes : b};
}

double activate(int act, double v) {
  switch (act) {
    case GN_ACTIVATION_RELU:
      return v < 0 ? 0.0 : v;
    case GN_ACTIVATION_SILU:
      return v / (1.0 + std::exp(-v));
    case GN_ACTIVATION_GELU:
      return 0.5 * v * std::erfc(-v / std::sqrt(2.0));
    default:
      return v;
  }
}

float value(FuzzedDataProvider& in, int mode, float base) {
  switch (mode) {
    case 0:
      return static_cast<float>(in.ConsumeIntegral<std::int8_t>()) * 0.25f;
    case 1: {
      const std::uint32_t bits = in.ConsumeIntegral<std::uint32_t>();
      float f;
      std::memcpy(&f, &bits, 4);
      return f;
    }
    case 2:
      return base + static_cast<float>(in.ConsumeIntegral<std::int8_t>()) * 0.0078125f;  // big mean
    default:
      return base;  // constant: var = 0
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const bool use_ex = in.ConsumeBool();
  std::size_t batch = in.ConsumeIntegralInRange<std::size_t>(0, 3);
  std::size_t channels = in.ConsumeIntegralInRange<std::size_t>(0, 12);
  std::size_t groups = in.ConsumeIntegralInRange<std::size_t>(0, 13);
  std::size_t spatial = in.ConsumeIntegralInRange<std::size_t>(0, 80);
  if (in.ConsumeIntegralInRange<int>(0, 15) == 0) {  // huge sizes: only combinations that must be rejected
    // Every size non-zero: zero batch or spatial is a valid no-op whatever channels is, and the small buffers
    // below could not be the `channels` floats of gamma and beta such a problem documents.
    batch = in.ConsumeIntegral<std::size_t>() | 1;
    channels = in.ConsumeIntegral<std::size_t>() | 1;
    spatial = in.ConsumeIntegral<std::size_t>() | 1;
    groups = 1;
  }
  // eps: the default, 0, a small range, or raw bits (NaN, Inf, negative, subnormal).
  float eps = 1e-5f;
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 1:
      eps = 0.0f;
      break;
    case 2:
      eps = in.ConsumeFloatingPointInRange<float>(0.0f, 4.0f);
      break;
    case 3: {
      const std::uint32_t bits = in.ConsumeIntegral<std::uint32_t>();
      std::memcpy(&eps, &bits, 4);
      break;
    }
    default:
      break;
  }
  const int num_threads = in.ConsumeIntegralInRange<int>(-1, 4);
  // gn_options followed by the bytes a newer header's fields would occupy: a struct_size past this version's
  // struct is valid only when they are zero, so the bad-size case sets them.
  struct {
    gn_options known;
    std::uint64_t unknown;
  } newer{};
  gn_options& o = newer.known;
  gn_options_init(&o);
  o.num_threads = num_threads;
  int dtype = GN_DTYPE_F32, layout = GN_LAYOUT_NCHW, act = GN_ACTIVATION_NONE;
  bool residual = false, want_sum = false, want_stats = false, bad_struct = false;
  if (use_ex) {
    dtype = in.ConsumeIntegralInRange<int>(0, 3);   // 3: invalid
    layout = in.ConsumeIntegralInRange<int>(0, 2);  // 2: invalid
    act = in.ConsumeIntegralInRange<int>(0, 4);     // 4: invalid
    residual = in.ConsumeBool();
    want_sum = in.ConsumeBool();  // without residual: invalid
    want_stats = in.ConsumeBool();
    bad_struct = in.ConsumeIntegralInRange<int>(0, 31) == 0;
  }
  const bool gamma_present = in.ConsumeBool(), beta_present = in.ConsumeBool();
  // 0 separate, 1 in place, 2 y = x + k, 3 x = y + k, 4 y overlaps gamma, 5 x null, 6 y null, 7 sum overlaps
  // x
  const int alias = in.ConsumeIntegralInRange<int>(0, 15) < 8 ? in.ConsumeIntegralInRange<int>(0, 1)
                                                              : in.ConsumeIntegralInRange<int>(0, 7);
  const int xmode = in.ConsumeIntegralInRange<int>(0, 3), gmode = in.ConsumeIntegralInRange<int>(0, 3);

  // ---- what the contract says about these arguments
  std::size_t per = 0, total = 0, bytes = 0;
  const std::size_t esize = dtype == GN_DTYPE_F32 ? 4 : 2;
  const bool overflow = __builtin_mul_overflow(channels, spatial, &per) ||
                        __builtin_mul_overflow(per, batch, &total) ||
                        __builtin_mul_overflow(total, esize, &bytes) ||
                        bytes > static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max());
  if (!overflow && total > 4 * 12 * 80) return 0;  // a valid but large problem: not on these small buffers
  const std::size_t n = overflow ? 16 : total;     // buffer elements (overflow cases must not touch them)
  const std::size_t c_alloc = std::max<std::size_t>(channels <= 12 ? channels : 12, 1);
  bool invalid = overflow || channels == 0 || groups == 0 || (groups && channels % groups) ||
                 !std::isfinite(eps) || eps < 0 || num_threads < 0 || bad_struct || dtype > 2 || layout > 1 ||
                 act > 3 || (want_sum && !residual);

  // ---- buffers: one pool so overlaps are real pointers into the same allocation
  const std::size_t k = n > 1 ? 1 + in.ConsumeIntegralInRange<std::size_t>(0, n - 2) : 0;
  // mean / rstd hold batch * groups floats whenever that is small enough to allocate; otherwise the problem
  // is one of the huge (overflowing) ones, and the statistics outputs are not requested at all (a smaller
  // buffer would be a harness bug: the library trusts C pointers to have the documented size).
  std::size_t pairs = 1;
  if (batch <= 4096 && groups <= 4096 && batch * std::max<std::size_t>(groups, 1) <= 4096)
    pairs = batch * std::max<std::size_t>(groups, 1);
  else
    want_stats = false;
  std::vector<std::uint8_t> pool((6 * n + 3 * c_alloc + 16) * 4 + 64, 0xA5);  // y may start in gamma
  std::uint8_t* base = pool.data();
  std::uint8_t *x = base, *y = base + (n + 1) * 4, *r = base + 2 * (n + 1) * 4, *sum = base + 3 * (n + 1) * 4;
  float* gamma = reinterpret_cast<float*>(base + 4 * (n + 1) * 4);
  float* beta = gamma + c_alloc + 1;
  std::vector<float> mean(std::max<std::size_t>(pairs, 1), -9.0f), rstd(mean.size(), -9.0f);
  if (alias == 1) y = x;
  if (alias == 2) y = x + k * esize;
  if (alias == 3) x = y + k * esize;
  if (alias == 4) y = reinterpret_cast<std::uint8_t*>(gamma) + 4 * (c_alloc / 2);
  if (alias == 7) sum = x + k * esize;
  const void* xp = alias == 5 ? nullptr : x;
  void* yp = alias == 6 ? nullptr : y;
  // Fill inputs (x first: y may alias it and must then hold x's values).
  const float xbase = value(in, 1, 0.0f);
  const float mean_base = std::isfinite(xbase) && std::fabs(xbase) < 1e6f ? xbase * 1e4f : 1e4f;
  for (std::size_t i = 0; i < n && alias != 5; ++i) {
    const float v = value(in, xmode, mean_base);
    if (dtype == GN_DTYPE_F32) {
      std::memcpy(x + 4 * i, &v, 4);
    } else {
      std::uint16_t h = in.ConsumeIntegral<std::uint16_t>();
      if (xmode != 1) h = static_cast<std::uint16_t>(h & 0x3fff);  // moderate magnitudes unless raw
      std::memcpy(x + 2 * i, &h, 2);
    }
  }
  for (std::size_t i = 0; i < n && residual; ++i) {
    if (dtype == GN_DTYPE_F32) {
      const float v = value(in, xmode == 3 ? 0 : xmode, 0.0f);
      std::memcpy(r + 4 * i, &v, 4);
    } else {
      const std::uint16_t h = static_cast<std::uint16_t>(in.ConsumeIntegral<std::uint16_t>() & 0x3bff);
      std::memcpy(r + 2 * i, &h, 2);
    }
  }
  if (alias != 4) {
    for (std::size_t c = 0; c < c_alloc; ++c) gamma[c] = value(in, gmode == 3 ? 0 : gmode, 1.0f);
    for (std::size_t c = 0; c < c_alloc; ++c) beta[c] = value(in, gmode == 3 ? 0 : gmode, 0.0f);
  }
  // gamma / beta only when the pool really holds `channels` floats for them: a C pointer stands for a buffer
  // of the documented size (with channels > 12 only empty problems get here, and those still validate gamma).
  const float* gp = gamma_present && channels <= c_alloc ? gamma : nullptr;
  const float* bp = beta_present && channels <= c_alloc ? beta : nullptr;
  if (!invalid) {  // aliasing and null rules
    const std::size_t xb = xp ? total * esize : 0, yb = yp ? total * esize : 0;
    if (total != 0 && (!xp || !yp)) invalid = true;
    const region rx = reg(xp, xb), ry = reg(yp, yb), rg = reg(gp, gp ? channels * 4 : 0),
                 rb = reg(bp, bp ? channels * 4 : 0),
                 rr = reg(residual ? r : nullptr, residual ? total * esize : 0),
                 rs = reg(want_sum ? sum : nullptr, want_sum ? total * esize : 0);
    if (overlap(ry, rx) && xp != yp) invalid = true;
    if (overlap(ry, rg) || overlap(ry, rb) || overlap(ry, rr) || overlap(rs, rx) || overlap(rs, rg) ||
        overlap(rs, rb) || overlap(rs, rr) || overlap(rs, ry))
      invalid = true;
  }

  // ---- call
  const std::vector<std::uint8_t> before = pool;
  o.dtype = static_cast<gn_dtype>(dtype);
  o.layout = static_cast<gn_layout>(layout);
  o.activation = static_cast<gn_activation>(act);
  o.residual = residual ? r : nullptr;
  o.sum = want_sum ? sum : nullptr;
  o.mean = want_stats ? mean.data() : nullptr;
  o.rstd = want_stats ? rstd.data() : nullptr;
  if (bad_struct) {
    const bool zero = in.ConsumeBool();
    o.struct_size = zero ? 0 : sizeof(gn_options) + sizeof newer.unknown;
    newer.unknown = zero ? 0 : 1;  // a field this library version does not know, set
  }
  gn_status st;
  if (use_ex) {
    st = gn_group_norm_ex(xp, yp, gp, bp, batch, channels, spatial, groups, eps, &o);
  } else {
    st = gn_group_norm_f32(static_cast<const float*>(xp), static_cast<float*>(yp), gp, bp, batch, channels,
                           spatial, groups, eps, num_threads);
  }
  if (st != GN_OK) {
    if (pool != before) die("an error status wrote into the buffers");
    for (std::size_t i = 0; i < mean.size(); ++i)
      if (mean[i] != -9.0f || rstd[i] != -9.0f) die("an error status wrote mean / rstd");
    if (std::strlen(gn_last_error()) == 0) die("error status without a message");
  }
  if (invalid) {
    if (st != GN_INVALID_ARGUMENT) die("invalid arguments not rejected", st);
    return 0;
  }
  if (st == GN_INVALID_ARGUMENT && std::strstr(gn_last_error(), "not supported"))
    return 0;  // a feature not yet there
  if (st != GN_OK) die("valid arguments rejected", st);
  if (total == 0) {
    if (pool != before) die("an empty problem wrote");
    return 0;
  }

  // ---- reference on the stored values (x + residual rounded to float once, as documented), NCHW order
  auto load = [&](const std::uint8_t* p, std::size_t i) -> float {
    if (dtype == GN_DTYPE_F32) {
      float f;
      std::memcpy(&f, p + 4 * i, 4);
      return f;
    }
    std::uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    return dtype == GN_DTYPE_F16 ? gn_half::f16_to_float(h) : gn_half::bf16_to_float(h);
  };
  // Index in memory of NCHW element (b, c, s).
  auto at = [&](std::size_t b, std::size_t c, std::size_t s) {
    return layout == GN_LAYOUT_NHWC ? (b * spatial + s) * channels + c : (b * channels + c) * spatial + s;
  };
  std::vector<float> v(total);  // NCHW
  for (std::size_t b = 0; b < batch; ++b)
    for (std::size_t c = 0; c < channels; ++c)
      for (std::size_t s = 0; s < spatial; ++s) {
        const std::size_t m = at(b, c, s);
        const float xv = load(before.data() + (x - base), m);
        v[(b * channels + c) * spatial + s] = residual ? xv + load(r, m) : xv;
      }
  const std::vector<float> g(gamma, gamma + channels), bt(beta, beta + channels);
  std::vector<groupnorm::reference::stats> stats;
  const std::vector<double> ref =
      groupnorm::reference::group_norm(v.data(), batch, channels, spatial, groups, static_cast<double>(eps),
                                       gp ? g : std::vector<float>{}, bp ? bt : std::vector<float>{}, &stats);
  const double out_max = dtype == GN_DTYPE_F16 ? 65504.0 : 3.0e38;
  const double store_rel = dtype == GN_DTYPE_F16 ? 0x1p-11 : dtype == GN_DTYPE_BF16 ? 0x1p-8 : 0.0;
  const double store_abs = dtype == GN_DTYPE_F16 ? 0x1p-24 : 0.0;
  const double act_rel = (act == GN_ACTIVATION_SILU || act == GN_ACTIVATION_GELU) ? 1e-6 : 0.0;
  const std::size_t cpg = channels / groups, slice = cpg * spatial;
  for (std::size_t p = 0; p < batch * groups; ++p) {
    const std::size_t b = p / groups, grp = p % groups;
    bool finite_in = true;
    double dmax = 0;
    for (std::size_t i = 0; i < slice; ++i) {
      const float vi = v[p * slice + i];
      finite_in = finite_in && std::isfinite(vi);
      dmax = std::max(dmax, std::fabs(vi - stats[p].mean));
    }
    if (std::getenv("GN_FUZZ_DEBUG")) {
      std::fprintf(stderr, "pair %zu dtype %d layout %d act %d res %d eps %g slice:", p, dtype, layout, act,
                   residual ? 1 : 0, static_cast<double>(eps));
      for (std::size_t i = 0; i < slice && i < 64; ++i)
        std::fprintf(stderr, " %g", static_cast<double>(v[p * slice + i]));
      std::fprintf(stderr, "\n");
    }
    if (want_stats && !finite_in && (!std::isnan(mean[p]) && !std::isinf(mean[p])))
      die("mean of a NaN slice", mean[p]);
    if (want_stats && !finite_in && !std::isnan(rstd[p])) die("rstd of a NaN slice", rstd[p]);
    const double var_eps = stats[p].var + eps, rstd_ref = 1.0 / std::sqrt(var_eps);
    if (want_stats && finite_in && var_eps >= 0x1p-100 && dmax <= 0x1p60) {
      if (std::fabs(mean[p] - stats[p].mean) >
          (kK + 2) * kU * dmax + kU * std::fabs(stats[p].mean) + 0x1p-149)
        die("saved mean", mean[p], stats[p].mean, p);
      if (rstd_ref < 0x1p100 && std::fabs(rstd[p] - rstd_ref) > (kK + 2) * kU * rstd_ref)
        die("saved rstd", rstd[p], rstd_ref, p);
    }
    for (std::size_t cc = 0; cc < cpg; ++cc) {
      const std::size_t c = grp * cpg + cc;
      const double gm = gp ? gamma[c] : 1.0, bb = bp ? beta[c] : 0.0;
      const bool finite_gb = std::isfinite(gm) && std::isfinite(bb);
      for (std::size_t s = 0; s < spatial; ++s) {
        const std::size_t i = (b * channels + c) * spatial + s, m = at(b, c, s);
        const double got = load(y, m);
        if (want_sum) {
          const double want = load(before.data() + (x - base), m) + static_cast<double>(load(r, m));
          if (!(std::fabs(load(sum, m) - want) <= std::fabs(want) * (store_rel + kU) + store_abs) &&
              std::isfinite(want) && std::fabs(want) < out_max)
            die("sum output", load(sum, m), want, i);
        }
        if (!finite_in) {
          if (!std::isnan(got)) die("NaN / Inf input did not give NaN", got, ref[i], i);
          continue;
        }
        if (!finite_gb || var_eps < 0x1p-100 || dmax > 0x1p60) continue;
        const double yref = activate(act, ref[i]);
        if (std::fabs(gm) * rstd_ref > 0x1p100 || std::fabs(ref[i]) > out_max * 0.99) continue;
        // The per-channel scale gamma * rstd is a float (docs/guarantees.md): below the normal range it loses
        // relative precision or flushes to 0, and the output tends to beta.
        if (gm != 0.0 && std::fabs(gm) * rstd_ref < 0x1p-126) continue;
        const double tol = (kK + 8) * kU * std::fabs(gm) * rstd_ref * dmax +
                           4 * kU * (std::fabs(bb) + std::fabs(ref[i])) +
                           (store_rel + act_rel) * std::fabs(yref) + store_abs + 1e-37;
        // A tolerance band reaching past the storage range (cancellation of large gamma * xhat and beta): the
        // allowed float error may legitimately round to +-inf in a 16-bit type, so neither the finite rule
        // nor the comparison applies (gamma = beta = 1.5e13 with xhat = -1 in f16: reference 4e4, float error
        // 1e6).
        const bool band_in_range = std::fabs(ref[i]) + tol * 1.2 <= out_max;
        if (band_in_range &&
            std::fabs(gm) * dmax / std::sqrt(static_cast<double>(eps)) + std::fabs(bb) < 0x1p100 &&
            !std::isfinite(got))
          die("finite inputs gave a non-finite output", got, yref, i);
        if (std::getenv("GN_FUZZ_DEBUG"))
          std::fprintf(stderr, "  c %zu s %zu gamma %g beta %g got %g ref %g yref %g tol %g\n", c, s, gm, bb,
                       got, ref[i], yref, tol);
        if (!band_in_range) continue;
        if (!(std::fabs(got - yref) <= tol * 1.2))
          die("output differs from the float64 reference", got, yref, i);
      }
    }
  }
  return 0;
}
