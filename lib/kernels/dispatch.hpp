// The kernel families: which one a plan runs, and the registry's names (lib/kernels/dispatch.cpp).
#pragma once

#include <string>

#include "kernels/backward_kernels.hpp"
#include "kernels/kernels.hpp"

namespace groupnorm::detail {

// One family's kernels for both directions, defined by its kernels_<family>.cpp.
struct family_kernels {
  kernel_table forward;
  backward_table backward;
};

struct kernel_choice {
  isa family;  // never automatic
  const kernel_table* table;
};

// The family for `requested` (automatic: GROUPNORM_ISA if set, else the best the CPU supports); throws
// groupnorm::invalid_argument for a family this CPU or build cannot run.
kernel_choice choose_kernels(isa requested);
// The most preferred family this CPU supports (detected once per process).
isa best_supported_isa() noexcept;

// Whether k is automatic or a family of the registry (supported here or not).
bool known_isa(isa k) noexcept;
// The family named `name` ("automatic" included); false when no family has that name.
bool parse_isa_name(const char* name, isa& out) noexcept;
// "automatic, scalar, avx2, ...": every name parse_isa_name accepts, for messages.
std::string isa_names();

// The backward table of a resolved family (never isa::automatic).
const backward_table& backward_kernels_for(isa family) noexcept;

}  // namespace groupnorm::detail
