// The generic kernels compiled for the scalar family (target flags set in lib/CMakeLists.txt).
#include "kernels/kernel_impl.hpp"

namespace groupnorm::detail {

const kernel_table& kernels_scalar() noexcept {
  static const kernel_table table = make_table(isa::scalar);
  return table;
}

}  // namespace groupnorm::detail
