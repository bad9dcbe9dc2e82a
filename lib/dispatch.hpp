// The kernel-family registry's queries (lib/dispatch.cpp).
#pragma once

#include <string>

#include "kernels/kernels.hpp"

namespace groupnorm::detail {

// Whether k is automatic or a family of the registry (supported here or not).
bool known_isa(isa k) noexcept;
// The family named `name` ("automatic" included); false when no family has that name.
bool parse_isa_name(const char* name, isa& out) noexcept;
// "automatic, scalar, avx2, ...": every name parse_isa_name accepts, for messages.
std::string isa_names();

}  // namespace groupnorm::detail
