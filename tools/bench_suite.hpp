// The benchmark suite's shapes, shared by `groupnorm bench` and the PyTorch peer bench.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace groupnorm::tool {

struct bench_shape {
  std::string name;
  std::size_t b, c, h, w, g;
};

inline const std::vector<bench_shape>& default_suite() {
  static const std::vector<bench_shape> suite = {
      {"sd_unet_64x64_c320", 1, 320, 64, 64, 32},
      {"sd_unet_32x32_c640", 1, 640, 32, 32, 32},
      {"sd_unet_16x16_c1280", 1, 1280, 16, 16, 32},
      {"sd_unet_8x8_c1280_b2", 2, 1280, 8, 8, 32},
      {"sd_vae_256x256_c256", 1, 256, 256, 256, 32},
      {"det_fpn_b2_c256_100x152", 2, 256, 100, 152, 32},
      {"layernorm_g1_b1_c64_128x128", 1, 64, 128, 128, 1},
      {"instnorm_gC_b4_c64_56x56", 4, 64, 56, 56, 64},
      {"tiny_b1_c32_8x8", 1, 32, 8, 8, 8},
  };
  return suite;
}

}  // namespace groupnorm::tool
