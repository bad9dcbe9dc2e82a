// What the tool reports about the machine it runs on: CPU model, kernel families, oneTBB.
#pragma once

#include <string>

#include "groupnorm/groupnorm.hpp"

namespace groupnorm::tool {

// The CPU's model name from /proc/cpuinfo (read once per process), or "unknown CPU".
const std::string& cpu_model();

// The family an `isa::automatic` plan selects here (GROUPNORM_ISA included), e.g. "avx512".
isa automatic_isa();

// The families this CPU can run, e.g. "scalar, avx2, avx512".
std::string supported_isas();

// "2021.8 (runtime 2021.8.0)": the oneTBB headers built against and the library loaded.
std::string tbb_version();

}  // namespace groupnorm::tool
