// The generic backward kernels compiled for the neon family (aarch64; NEON primitives selected in
// lib/CMakeLists.txt).
#include "kernels/backward_impl.hpp"

namespace groupnorm::detail {

const backward_table& backward_kernels_neon() noexcept {
  static const backward_table table = bwd::make_backward_table(isa::neon);
  return table;
}

}  // namespace groupnorm::detail
