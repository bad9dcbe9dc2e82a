// The generic kernels compiled for the avx2 family (target flags set in lib/CMakeLists.txt).
#include "kernels/kernel_impl.hpp"

namespace groupnorm::detail {

const kernel_table& kernels_avx2() noexcept {
  static const kernel_table table = make_table(isa::avx2);
  return table;
}

}  // namespace groupnorm::detail
