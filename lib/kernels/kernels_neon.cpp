// The kernels compiled for the neon family, both directions (aarch64; NEON primitives selected in
// lib/CMakeLists.txt).
#include "kernels/backward_impl.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/family.hpp"

namespace groupnorm::detail {

const family_kernels& kernels_neon() noexcept {
  static const family_kernels tables{make_table(), bwd::make_backward_table(isa::neon)};
  return tables;
}

}  // namespace groupnorm::detail
