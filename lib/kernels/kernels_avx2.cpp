// The kernels compiled for the avx2 family (target flags in lib/CMakeLists.txt).
#include "kernels/family.hpp"

namespace groupnorm::detail {

const kernel_table& kernels_avx2() noexcept {
  static const kernel_table table = make_table();
  return table;
}

}  // namespace groupnorm::detail
