// The generic kernels compiled for the avx512 family (target flags set in lib/CMakeLists.txt).
#include "kernels/kernel_impl.hpp"

namespace groupnorm::detail {

const kernel_table& kernels_avx512() noexcept {
  static const kernel_table table = make_table(isa::avx512);
  return table;
}

}  // namespace groupnorm::detail
