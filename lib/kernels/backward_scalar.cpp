// The generic backward kernels compiled for the scalar family (target flags set in lib/CMakeLists.txt).
#include "kernels/backward_impl.hpp"

namespace groupnorm::detail {

const backward_table& backward_kernels_scalar() noexcept {
  static const backward_table table = bwd::make_backward_table(isa::scalar);
  return table;
}

}  // namespace groupnorm::detail
