// `groupnorm bench --direction backward`: plan::run_backward timed against copies of 1.5 times the
// forward's bytes (the backward reads x and dy and writes dx), each timed alone as in the forward bench,
// after checking it against the float64 reference.
#include "bench_backward.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>

#include <oneapi/tbb/task_arena.h>

#include "floor_copy.hpp"
#include "reference_backward.hpp"
#include "timing.hpp"

namespace groupnorm::tool {
namespace {

struct row {
  const backward_bench_shape* s;
  int threads;
  floor_measurement m;
  double max_err;
};

// NCHW index of element j of an NHWC tensor.
std::size_t nchw_of(std::size_t j, std::size_t C, std::size_t S) {
  return (j / C / S * C + j % C) * S + j / C % S;
}

// Largest |got - want| / bound over the outputs, bound = the reference's sum of absolute terms (plus 1e-30
// so an all-zero gradient compares exactly).
double worst_error(const reference::grads64& g, const std::vector<float>& dx_nchw,
                   const std::vector<float>& dgamma, const std::vector<float>& dbeta) {
  double worst = 0;
  auto see = [&](double got, double want, double bound) {
    worst = std::max(worst, std::fabs(got - want) / (bound + 1e-30));
  };
  for (std::size_t i = 0; i < dx_nchw.size(); ++i) see(dx_nchw[i], g.dx[i], g.dx_scale[i]);
  for (std::size_t c = 0; c < dgamma.size(); ++c) {
    see(dgamma[c], g.dgamma[c], g.dgamma_scale[c]);
    see(dbeta[c], g.dbeta[c], g.dbeta_scale[c]);
  }
  return std::isnan(worst) ? INFINITY : worst;
}

void write_json(const std::string& path, const std::vector<row>& rows, bool& ok) {
  std::ofstream f(path);
  f << "[\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const row& r = rows[i];
    f << "  {\"direction\": \"backward\", \"shape\": \"" << r.s->name << "\", \"B\": " << r.s->batch
      << ", \"C\": " << r.s->channels << ", \"spatial\": " << r.s->spatial << ", \"G\": " << r.s->groups
      << ", \"threads\": " << r.threads << ", \"median_us\": " << r.m.run.median_s * 1e6
      << ", \"min_us\": " << r.m.run.min_s * 1e6
      << ", \"floor_median_us\": " << r.m.floor.best_time.median_s * 1e6 << ", \"floor_strategy\": \""
      << to_string(r.m.floor.best) << "\", \"ratio\": " << r.m.ratio << ", \"max_rel_err\": " << r.max_err
      << "}" << (i + 1 < rows.size() ? "," : "") << "\n";
  }
  f << "]\n";
  ok = static_cast<bool>(f);
}

}  // namespace

int bench_backward(const backward_bench_options& o) {
  std::vector<row> rows;
  std::printf("%-30s %10s %4s %11s %11s %11s %-14s %7s\n", "shape (backward)", "elements", "thr", "median_us",
              "min_us", "floor_us", "floor", "ratio");
  for (const backward_bench_shape& s : o.shapes) {
    problem p;
    p.batch = s.batch;
    p.channels = s.channels;
    p.spatial = s.spatial;
    p.num_groups = s.groups;
    p.memory_layout = o.memory_layout;
    p.fused_activation = o.act;
    p.kernel_isa = o.kernel;
    const plan pl(p);
    const std::size_t n = pl.element_count(), C = s.channels, S = s.spatial;
    std::mt19937 rng(42);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    aligned_vector x(n), dy(n), dx(n), y(n);
    std::vector<float> gamma(C), beta(C), mean(s.batch * s.groups), rstd(s.batch * s.groups);
    std::vector<float> dgamma(C), dbeta(C);
    for (float& v : x) v = 0.5f + 2.0f * nd(rng);
    for (float& v : dy) v = nd(rng);
    for (float& v : gamma) v = 1.0f + 0.1f * nd(rng);
    for (float& v : beta) v = 0.1f * nd(rng);
    pl.run(tensors<float>{.x = x, .y = y, .gamma = gamma, .beta = beta, .mean = mean, .rstd = rstd});
    std::vector<double> workspace(pl.backward_workspace_size());
    const backward_tensors<float> t{.x = x,
                                    .dy = dy,
                                    .gamma = gamma,
                                    .beta = beta,
                                    .mean = mean,
                                    .rstd = rstd,
                                    .dx = dx,
                                    .dgamma = dgamma,
                                    .dbeta = dbeta,
                                    .workspace = workspace};
    const bool nhwc = o.memory_layout == layout::nhwc;
    std::vector<double> x64(n), dy64(n);
    for (std::size_t j = 0; j < n; ++j) {
      const std::size_t i = nhwc ? nchw_of(j, C, S) : j;
      x64[i] = x[j], dy64[i] = dy[j];
    }
    const reference::grads64 ref = reference::backward64(
        {s.batch, C, S, s.groups, p.epsilon, o.act, {gamma.begin(), gamma.end()}, {beta.begin(), beta.end()}},
        x64, dy64);
    // The floor: 1.5 times the forward's bytes copied (src and dst of 1.5 n floats each).
    const std::size_t floor_elems = n + n / 2;
    aligned_vector copy_src(floor_elems, 1.0f), copy_dst(floor_elems);
    for (int threads : o.threads) {
      tbb::task_arena arena(threads);
      arena.initialize();
      pl.run_backward(t, &arena);
      std::vector<float> dx_nchw(n);
      for (std::size_t j = 0; j < n; ++j) dx_nchw[nhwc ? nchw_of(j, C, S) : j] = dx[j];
      const double err = worst_error(ref, dx_nchw, dgamma, dbeta);
      // 1e-4 of each output's absolute-sum bound: ten times the test suite's tolerance, a sanity check only.
      if (!(err <= 1e-4)) {
        std::fprintf(
            stderr,
            "groupnorm bench: %s backward at %d threads differs from the float64 reference (error %g "
            "of its bound > 1e-4); not timing a wrong kernel\n",
            s.name.c_str(), threads, err);
        return 1;
      }
      const floor_measurement m = measure_against_floor(
          arena, [&] { pl.run_backward(t, &arena); }, copy_dst.data(), copy_src.data(), floor_elems,
          o.seconds, false);
      rows.push_back({&s, threads, m, err});
      std::printf("%-30s %10zu %4d %11.2f %11.2f %11.2f %-14s %7.3f\n", s.name.c_str(), n, threads,
                  m.run.median_s * 1e6, m.run.min_s * 1e6, m.floor.best_time.median_s * 1e6,
                  to_string(m.floor.best), m.ratio);
      std::fflush(stdout);
    }
  }
  for (int t : o.threads) {
    double log_sum = 0;
    int count = 0;
    for (const row& r : rows)
      if (r.threads == t) log_sum += std::log(r.m.ratio), ++count;
    if (count)
      std::printf("backward geomean ratio at %d thread%s: %.3f\n", t, t == 1 ? "" : "s",
                  std::exp(log_sum / count));
  }
  if (!o.json.empty()) {
    bool ok = false;
    write_json(o.json, rows, ok);
    if (!ok) {
      std::fprintf(stderr, "groupnorm bench: could not write %s\n", o.json.c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace groupnorm::tool
