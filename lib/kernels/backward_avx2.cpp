// The generic backward kernels compiled for the avx2 family (target flags set in lib/CMakeLists.txt).
#include "kernels/backward_impl.hpp"

namespace groupnorm::detail {

const backward_table& backward_kernels_avx2() noexcept {
  static const backward_table table = bwd::make_backward_table(isa::avx2);
  return table;
}

}  // namespace groupnorm::detail
