// The backward table of a kernel family, so a backward run uses the family its plan resolved.
#include "kernels/backward_kernels.hpp"

namespace groupnorm::detail {

const backward_table& backward_kernels_for(isa family) noexcept {
  switch (family) {
#if defined(GROUPNORM_HAVE_X86_KERNELS)
    case isa::avx512:
      return backward_kernels_avx512();
    case isa::avx2:
      return backward_kernels_avx2();
#endif
    default:
      return backward_kernels_scalar();
  }
}

}  // namespace groupnorm::detail
