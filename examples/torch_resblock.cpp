// A diffusion ResBlock in libtorch, run with torch::nn::GroupNorm + SiLU and with groupnorm::group_norm.
//
// usage: torch_resblock [channels [height width [threads]]]   (default 128 32 32 1)
// Builds GN -> SiLU -> Conv3x3 -> GN -> SiLU -> Conv3x3 plus the skip, checks that both versions agree and
// prints the median time of each. Exit status 1 if they disagree.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <torch/torch.h>

#include "groupnorm_torch.hpp"

namespace {

constexpr std::int64_t kGroups = 32;

struct ResBlockImpl : torch::nn::Module {
  explicit ResBlockImpl(std::int64_t channels)
      : norm1(register_module("norm1", torch::nn::GroupNorm(kGroups, channels))),
        norm2(register_module("norm2", torch::nn::GroupNorm(kGroups, channels))),
        conv1(register_module("conv1",
                              torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, channels, 3).padding(1)))),
        conv2(register_module(
            "conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, channels, 3).padding(1)))) {
    // Non-trivial affine parameters, so a weight or bias mix-up shows in the comparison.
    torch::NoGradGuard no_grad;
    for (auto* norm : {&norm1, &norm2}) {
      (*norm)->weight.normal_(1.0, 0.5);
      (*norm)->bias.normal_(0.0, 0.5);
    }
  }

  // GN + SiLU with torch::nn::GroupNorm and torch::silu, or with the fused groupnorm operator.
  torch::Tensor norm_silu(torch::nn::GroupNorm& norm, const torch::Tensor& x, bool library) {
    if (!library) return torch::silu(norm(x));
    return groupnorm_torch::group_norm(x, kGroups, norm->weight, norm->bias, norm->options.eps(), "silu");
  }

  torch::Tensor forward(const torch::Tensor& x, bool library) {
    torch::Tensor h = conv1(norm_silu(norm1, x, library));
    return x + conv2(norm_silu(norm2, h, library));
  }

  torch::nn::GroupNorm norm1, norm2;
  torch::nn::Conv2d conv1, conv2;
};
TORCH_MODULE(ResBlock);

double median_ms(ResBlock& block, const torch::Tensor& x, bool library) {
  std::vector<double> ms;
  for (int rep = 0; rep < 5; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    block->forward(x, library);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t channels = argc > 1 ? std::atoll(argv[1]) : 128;
  const std::int64_t height = argc > 2 ? std::atoll(argv[2]) : 32;
  const std::int64_t width = argc > 3 ? std::atoll(argv[3]) : height;
  const int threads = argc > 4 ? std::atoi(argv[4]) : 1;
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  ResBlock block(channels);
  const torch::Tensor x = torch::randn({1, channels, height, width});

  c10::InferenceMode inference;
  const torch::Tensor expected = block->forward(x, false);
  const torch::Tensor actual = block->forward(x, true);
  // The two GroupNorms agree to a few float32 roundings (~1e-6 relative); each 3x3 convolution sums 9 x C
  // products of them, so the outputs (of order 1) agree to well under 1e-4 of their largest magnitude.
  const double error = (actual - expected).abs().max().item<double>();
  const double scale = expected.abs().max().item<double>();
  std::printf("ResBlock 1x%lldx%lldx%lld, %d thread(s): max |difference| %.3g (outputs up to %.3g)\n",
              static_cast<long long>(channels), static_cast<long long>(height), static_cast<long long>(width),
              threads, error, scale);
  if (!(error <= 1e-4 * scale)) {
    std::printf("FAILED: the outputs differ by more than 1e-4 of their magnitude\n");
    return 1;
  }
  std::printf("torch::nn::GroupNorm + SiLU: %.2f ms\n", median_ms(block, x, false));
  std::printf("groupnorm::group_norm:       %.2f ms\n", median_ms(block, x, true));
  return 0;
}
