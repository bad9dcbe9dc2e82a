// What the tool reports about the machine it runs on (see machine.hpp).
#include "machine.hpp"

#include <fstream>

#include <oneapi/tbb/version.h>

namespace groupnorm::tool {

const std::string& cpu_model() {
  static const std::string model = [] {
    std::ifstream f("/proc/cpuinfo");
    // x86 names its CPU in "model name"; aarch64 kernels give only "CPU implementer" / "CPU part".
    for (std::string line; std::getline(f, line);)
      if (line.rfind("model name", 0) == 0 || line.rfind("Model", 0) == 0) {
        const auto colon = line.find(':');
        if (colon != std::string::npos && colon + 2 <= line.size()) return line.substr(colon + 2);
      }
    return std::string("unknown CPU");
  }();
  return model;
}

isa automatic_isa() {
  problem p;
  p.channels = 1;
  p.num_groups = 1;
  return plan(p).selected_isa();
}

std::string supported_isas() {
  std::string s;
  for (isa k : {isa::scalar, isa::avx2, isa::avx512})
    if (isa_supported(k)) s += (s.empty() ? "" : ", ") + std::string(to_string(k));
  return s;
}

std::string tbb_version() {
  return std::string(TBB_VERSION_STRING) + " (runtime " + TBB_runtime_version() + ")";
}

}  // namespace groupnorm::tool
