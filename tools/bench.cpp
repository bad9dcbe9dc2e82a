// `groupnorm bench`: time GroupNorm on a prepared plan against the memory floor (the fastest of several
// copies of the same bytes in the same arena, each timed alone: tools/floor_copy.hpp), after checking the
// kernel's output against a float64 reference. A wrong kernel never reports a number.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>

#include "bench.hpp"
#include "bench_api.hpp"
#include "bench_backward.hpp"
#include "bench_suite.hpp"
#include "floor_copy.hpp"
#include "groupnorm/groupnorm.hpp"
#include "machine.hpp"
#include "reference.hpp"
#include "timing.hpp"

namespace groupnorm::tool::bench_command {
namespace {

struct row {
  shape s;
  std::size_t elements;
  int threads;
  floor_measurement m;
  double gbps, max_err;
};

problem problem_of(const options& o, const shape& s) {
  problem p;
  p.batch = s.b;
  p.channels = s.c;
  p.spatial = s.h * s.w;
  p.num_groups = s.g;
  p.kernel_isa = o.kernel;
  p.memory_layout = o.memory_layout;
  p.fused_activation = o.act;
  return p;
}

// Which machine, kernels and threads the figures are from, and what ratio means.
void print_header(const options& o) {
  problem p;
  p.channels = p.num_groups = 1;
  p.kernel_isa = o.kernel;
  std::string threads;
  for (int t : o.threads) threads += (threads.empty() ? "" : ", ") + std::to_string(t);
  std::printf("# cpu:     %s, %d hardware threads\n", cpu_model().c_str(), tbb::info::default_concurrency());
  std::printf("# kernels: %s (--isa %s; supported here: %s)\n", to_string(plan(p).selected_isa()),
              to_string(o.kernel), supported_isas().c_str());
  std::printf("# threads: %s (arena sizes)\n", threads.c_str());
  std::printf(
      "# ratio:   median GroupNorm time / median time of the fastest copy of the same bytes in the same "
      "arena, "
      "each timed alone (1.0 = the memory floor; lower is better)%s\n",
      o.consumer ? "; every figure includes a read of y after the run or copy (--consumer)" : "");
}

}  // namespace

int run(options o) {
  if (o.shapes.empty()) o.shapes = default_suite();
  if (o.threads.empty()) {
    o.threads.push_back(1);
    if (tbb::info::default_concurrency() > 1) o.threads.push_back(tbb::info::default_concurrency());
  }
  if (o.backward) {
    print_header(o);
    backward_bench_options bo{{}, o.threads, o.memory_layout, o.act, o.kernel, o.seconds, o.json};
    for (const shape& s : o.shapes) bo.shapes.push_back({s.name, s.b, s.c, s.h * s.w, s.g});
    return bench_backward(bo);
  }
  // Opened first, so a bad path fails before minutes of timing.
  std::ofstream json;
  if (!o.json.empty()) {
    json.open(o.json);
    if (!json) {
      std::fprintf(stderr, "groupnorm bench: cannot create %s: %s\n", o.json.c_str(), std::strerror(errno));
      return 1;
    }
  }
  for (const shape& s : o.shapes) plan{problem_of(o, s)};  // every shape valid before the first row
  print_header(o);
  std::vector<row> rows;
  std::printf("%-30s %10s %4s %11s %11s %8s %11s %-14s %7s\n", "shape", "elements", "thr", "median_us",
              "min_us", "GB/s", "floor_us", "floor", "ratio");
  for (const shape& s : o.shapes) {
    const problem p = problem_of(o, s);
    const plan pl(p);
    const std::size_t n = pl.element_count();
    std::mt19937 rng(42);
    std::normal_distribution<float> nd(0.5f, 2.0f);
    // 64-byte aligned tensors, as engines allocate them (PyTorch, ONNX Runtime, oneDNN all align to 64).
    aligned_vector x(n), y(n), scratch(n);
    std::vector<float> gamma(s.c), beta(s.c);
    for (float& v : x) v = nd(rng);
    for (float& v : gamma) v = 1.0f + 0.1f * nd(rng);
    for (float& v : beta) v = 0.1f * nd(rng);
    // NHWC: the reference runs on the NCHW transpose; ref_at maps an x / y index to its reference index.
    const std::size_t hw = s.h * s.w;
    const bool nhwc = o.memory_layout == layout::nhwc;
    std::vector<float> x_nchw;
    if (nhwc) {
      x_nchw.resize(n);
      for (std::size_t b = 0; b < s.b; ++b)
        for (std::size_t i = 0; i < hw; ++i)
          for (std::size_t c = 0; c < s.c; ++c) x_nchw[(b * s.c + c) * hw + i] = x[(b * hw + i) * s.c + c];
    }
    std::vector<double> ref =
        reference::group_norm(nhwc ? x_nchw.data() : x.data(), s.b, s.c, hw, s.g, p.epsilon, gamma, beta);
    for (double& v : ref) v = reference::act64(o.act, v);
    auto ref_at = [&](std::size_t j) {
      if (!nhwc) return ref[j];
      const std::size_t c = j % s.c, i = j / s.c % hw, b = j / s.c / hw;
      return ref[(b * s.c + c) * hw + i];
    };

    for (int t : o.threads) {
      tbb::task_arena arena(t);
      arena.initialize();
      // Verify this exact configuration (out of place or in place) first.
      if (o.inplace) {
        y = x;
        pl.run_inplace(y, gamma, beta, &arena);
      } else {
        pl.run(x, y, gamma, beta, &arena);
      }
      double max_err = 0;
      for (std::size_t i = 0; i < n; ++i)
        max_err = std::max(max_err, std::abs(y[i] - ref_at(i)) / (1.0 + std::abs(ref_at(i))));
      if (!(max_err <= 1e-4)) {
        std::fprintf(stderr,
                     "groupnorm bench: %s at %d threads: output differs from the float64 reference "
                     "(max relative error %g > 1e-4); not timing a wrong kernel\n",
                     s.name.c_str(), t, max_err);
        return 1;
      }
      auto gn = [&] {
        if (o.inplace) {
          pl.run_inplace(scratch, gamma, beta,
                         &arena);  // data drifts toward N(0,1) after the first call; same cost
        } else {
          pl.run(x, y, gamma, beta, &arena);
        }
      };
      if (o.inplace) scratch = x;
      const floor_measurement m =
          measure_against_floor(arena, gn, y.data(), x.data(), n, o.seconds, o.consumer);
      const row r{s, n, t, m, 2.0 * n * sizeof(float) / m.run.median_s / 1e9, max_err};
      rows.push_back(r);
      std::printf("%-30s %10zu %4d %11.2f %11.2f %8.1f %11.2f %-14s %7.3f\n", s.name.c_str(), n, t,
                  m.run.median_s * 1e6, m.run.min_s * 1e6, r.gbps, m.floor.best_time.median_s * 1e6,
                  to_string(m.floor.best), m.ratio);
      if (o.api != "cpp") {
        if (o.inplace) scratch = x;
        float* out = o.inplace ? scratch.data() : y.data();
        const api_timing a = time_api(o.api, pl, o.inplace ? scratch.data() : x.data(), out, gamma.data(),
                                      beta.data(), arena, t, o.seconds);
        if (!a.same_bits) {
          std::fprintf(stderr, "groupnorm bench: --api %s wrote other bits than plan::run\n", o.api.c_str());
          return 1;
        }
        const double excess = a.api_us - a.plan_us;
        std::printf("  api %-6s %9.3f us   plan::run %9.3f us   excess %+7.3f us   budget %.2f us: %s\n",
                    o.api.c_str(), a.api_us, a.plan_us, excess, a.budget_us,
                    excess <= a.budget_us ? "met" : "NOT MET");
      }
      std::fflush(stdout);
    }
  }
  for (int t : o.threads) {
    double log_sum = 0;
    int count = 0;
    double big_sum = 0;
    int big_count = 0;
    for (const row& r : rows) {
      if (r.threads != t) continue;
      log_sum += std::log(r.m.ratio), ++count;
      // Shapes a run keeps on the calling thread (the library's serial threshold) are timed by call overhead.
      if (r.elements >= 32 * 1024) big_sum += std::log(r.m.ratio), ++big_count;
    }
    if (count)
      std::printf("geomean ratio at %d thread%s: %.3f (%d shapes), %.3f (%d shapes of >= 32768 elements)\n",
                  t, t == 1 ? "" : "s", std::exp(log_sum / count), count,
                  big_count ? std::exp(big_sum / big_count) : 0.0, big_count);
  }
  if (json.is_open()) {
    std::ostream& f = json;
    f << "[\n";
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const row& r = rows[i];
      f << "  {\"shape\": \"" << r.s.name << "\", \"B\": " << r.s.b << ", \"C\": " << r.s.c
        << ", \"H\": " << r.s.h << ", \"W\": " << r.s.w << ", \"G\": " << r.s.g
        << ", \"elements\": " << r.elements << ", \"threads\": " << r.threads
        << ", \"median_us\": " << r.m.run.median_s * 1e6 << ", \"min_us\": " << r.m.run.min_s * 1e6
        << ", \"gbps\": " << r.gbps << ", \"floor_median_us\": " << r.m.floor.best_time.median_s * 1e6
        << ", \"floor_strategy\": \"" << to_string(r.m.floor.best) << "\""
        << ", \"consumer\": " << (r.m.consumer ? "true" : "false") << ", \"ratio\": " << r.m.ratio
        << ", \"max_rel_err\": " << r.max_err << "}" << (i + 1 < rows.size() ? "," : "") << "\n";
    }
    f << "]\n";
    json.close();
    if (!json) {
      std::fprintf(stderr, "groupnorm bench: could not write %s\n", o.json.c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace groupnorm::tool::bench_command
