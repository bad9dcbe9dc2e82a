// The generic backward kernels compiled for the avx512 family (target flags set in lib/CMakeLists.txt).
#include "kernels/backward_impl.hpp"

namespace groupnorm::detail {

const backward_table& backward_kernels_avx512() noexcept {
  static const backward_table table = bwd::make_backward_table(isa::avx512);
  return table;
}

}  // namespace groupnorm::detail
