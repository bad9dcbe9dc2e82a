// The kernels compiled for the neon family (aarch64; NEON primitives selected in lib/CMakeLists.txt).
#include "kernels/family.hpp"

namespace groupnorm::detail {

const kernel_table& kernels_neon() noexcept {
  static const kernel_table table = make_table();
  return table;
}

}  // namespace groupnorm::detail
