// The kernels compiled for the scalar family, both directions (target flags in lib/CMakeLists.txt).
#include "kernels/backward_impl.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/family.hpp"

namespace groupnorm::detail {

const family_kernels& kernels_scalar() noexcept {
  static const family_kernels tables{make_table(), bwd::make_backward_table(isa::scalar)};
  return tables;
}

}  // namespace groupnorm::detail
