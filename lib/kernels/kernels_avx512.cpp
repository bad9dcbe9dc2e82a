// The kernels compiled for the avx512 family (target flags in lib/CMakeLists.txt).
#include "kernels/family.hpp"

namespace groupnorm::detail {

const kernel_table& kernels_avx512() noexcept {
  static const kernel_table table = make_table();
  return table;
}

}  // namespace groupnorm::detail
