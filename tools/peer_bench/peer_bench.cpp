// groupnorm_peer_bench: PyTorch's at::group_norm (forward, no autograd) and groupnorm::plan::run on the bench
// suite's shapes in one process, at 1 and 2 threads, printing both medians and torch / ours.
#include <malloc.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <oneapi/tbb/task_arena.h>

#include "bench_suite.hpp"
#include "floor_copy.hpp"
#include "groupnorm/groupnorm.hpp"
#include "timing.hpp"

namespace {

using namespace groupnorm::tool;

struct options {
  std::vector<int> threads;
  double seconds = 0.3;    // sampling time per (shape, threads, library) and round
  bool warm_alloc = true;  // raise glibc's mmap and trim thresholds
};

bool parse(int argc, char** argv, options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) {
      const int n = std::atoi(argv[++i]);
      if (n <= 0) {
        std::fprintf(stderr, "groupnorm_peer_bench: --threads '%s', expected a positive count\n", argv[i]);
        return false;
      }
      o.threads.push_back(n);
    } else if (a == "--seconds" && i + 1 < argc) {
      o.seconds = std::atof(argv[++i]);
      if (!(o.seconds > 0)) {
        std::fprintf(stderr, "groupnorm_peer_bench: --seconds '%s', expected a positive number\n", argv[i]);
        return false;
      }
    } else if (a == "--cold-allocator") {
      o.warm_alloc = false;
    } else {
      std::fprintf(stderr,
                   "usage: groupnorm_peer_bench [--threads N]... [--seconds S] [--cold-allocator]\n"
                   "  at::group_norm (PyTorch, forward, NoGradGuard) and groupnorm::plan::run on the bench\n"
                   "  suite, float32 NCHW, same process; default threads 1 and 2.\n"
                   "  --cold-allocator  keep glibc's default thresholds: PyTorch's large outputs then come\n"
                   "                    from fresh mmap'd pages and pay their page faults on every call\n");
      return false;
    }
  }
  if (o.threads.empty()) o.threads = {1, 2};
  return true;
}

// Between two libraries' sampling blocks: OpenMP (PyTorch) and oneTBB workers spin for a while after their
// last parallel region; on a small machine that spinning would be charged to the other library.
void let_workers_sleep() {
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  if (!parse(argc, argv, o)) return 2;
  if (o.warm_alloc) {
    // Every at::group_norm call allocates its output. Above glibc's default 128 KiB mmap threshold each
    // allocation maps fresh pages and faults them in (~13 us per 4 KiB page on small VMs), and free() hands
    // them back; a framework's caching allocator or a long-running process keeps them instead. 1 GiB
    // thresholds model that warm state.
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  }
  torch::NoGradGuard no_grad;
  std::printf("PyTorch %s (at::group_norm, float32 NCHW, forward) vs groupnorm::plan::run; allocator: %s\n",
              TORCH_VERSION,
              o.warm_alloc ? "glibc, M_MMAP_THRESHOLD = M_TRIM_THRESHOLD = 1 GiB (warm)"
                           : "glibc defaults (cold: large outputs are fresh mmap pages)");
  std::printf("%-30s %4s %11s %11s %9s %10s %11s %11s\n", "shape", "thr", "torch_us", "ours_us", "torch/ours",
              "max_diff", "floor_us", "torch/floor");
  std::vector<double> log_ratio[2], log_bound[2];
  for (const bench_shape& s : default_suite()) {
    const std::size_t hw = s.h * s.w, n = s.b * s.c * hw;
    std::mt19937 rng(42);
    std::normal_distribution<float> nd(0.5f, 2.0f);
    aligned_vector x(n), y(n);
    std::vector<float> gamma(s.c), beta(s.c);
    for (float& v : x) v = nd(rng);
    for (float& v : gamma) v = 1.0f + 0.1f * nd(rng);
    for (float& v : beta) v = 0.1f * nd(rng);
    const auto f32 = at::TensorOptions().dtype(at::kFloat);
    const at::Tensor tx = at::from_blob(
        x.data(),
        {static_cast<long>(s.b), static_cast<long>(s.c), static_cast<long>(s.h), static_cast<long>(s.w)},
        f32);
    const at::Tensor tg = at::from_blob(gamma.data(), {static_cast<long>(s.c)}, f32);
    const at::Tensor tb = at::from_blob(beta.data(), {static_cast<long>(s.c)}, f32);
    groupnorm::problem p;
    p.batch = s.b;
    p.channels = s.c;
    p.spatial = hw;
    p.num_groups = s.g;
    const groupnorm::plan pl(p);
    const double eps = p.epsilon;
    for (int t : o.threads) {
      at::set_num_threads(t);
      tbb::task_arena arena(t);
      arena.initialize();
      // Same inputs, same answer: the largest difference between the two outputs.
      pl.run(x, y, gamma, beta, &arena);
      const at::Tensor ty = at::group_norm(tx, static_cast<long>(s.g), tg, tb, eps, false);
      const float* typ = ty.data_ptr<float>();
      double max_diff = 0;
      for (std::size_t i = 0; i < n; ++i) max_diff = std::max(max_diff, std::fabs(double(typ[i]) - y[i]));
      auto torch_call = [&] { (void)at::group_norm(tx, static_cast<long>(s.g), tg, tb, eps, false); };
      auto ours_call = [&] { pl.run(x, y, gamma, beta, &arena); };
      // Alternating blocks, three rounds each, each library timed alone within its block.
      std::vector<double> torch_s, ours_s;
      for (int round = 0; round < 3; ++round) {
        let_workers_sleep();
        for (double v : sample_alone(torch_call, o.seconds / 3)) torch_s.push_back(v);
        let_workers_sleep();
        for (double v : sample_alone(ours_call, o.seconds / 3)) ours_s.push_back(v);
      }
      const timing tt = summarize(torch_s), to = summarize(ours_s);
      // The memory floor of `groupnorm bench`: the fastest copy strategy of the same bytes, each timed alone.
      // torch / floor is the speed-up a kernel running at the floor would have: the most any can reach.
      double floor_s = 0;
      for (copy_strategy c : kCopyStrategies) {
        const double m =
            summarize(sample_alone([&] { floor_copy(c, arena, y.data(), x.data(), n); }, o.seconds / 6))
                .median_s;
        if (floor_s == 0 || m < floor_s) floor_s = m;
      }
      const double ratio = tt.median_s / to.median_s, bound = tt.median_s / floor_s;
      const bool tiny = n < 4096;
      if (!tiny) log_ratio[t == o.threads.front() ? 0 : 1].push_back(std::log(ratio));
      if (!tiny) log_bound[t == o.threads.front() ? 0 : 1].push_back(std::log(bound));
      std::printf("%-30s %4d %11.2f %11.2f %9.2f %10.2e %11.2f %11.2f\n", s.name.c_str(), t,
                  tt.median_s * 1e6, to.median_s * 1e6, ratio, max_diff, floor_s * 1e6, bound);
      std::fflush(stdout);
    }
  }
  for (std::size_t k = 0; k < o.threads.size() && k < 2; ++k) {
    double sum = 0;
    for (double v : log_ratio[k]) sum += v;
    if (!log_ratio[k].empty())
      std::printf("geomean torch/ours at %d thread%s (non-tiny shapes): %.2f\n", o.threads[k],
                  o.threads[k] == 1 ? "" : "s", std::exp(sum / static_cast<double>(log_ratio[k].size())));
    double bound_sum = 0;
    for (double v : log_bound[k]) bound_sum += v;
    if (!log_bound[k].empty())
      std::printf(
          "geomean torch/floor at %d thread%s (non-tiny shapes; the most any kernel can reach): %.2f\n",
          o.threads[k], o.threads[k] == 1 ? "" : "s",
          std::exp(bound_sum / static_cast<double>(log_bound[k].size())));
  }
  return 0;
}
