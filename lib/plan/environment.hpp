// The process's GROUPNORM_* environment settings, parsed once.
#pragma once

#include <cstddef>
#include <string>

#include "groupnorm/groupnorm.hpp"

namespace groupnorm::detail {

// The GROUPNORM_* variables, parsed. A variable that is set must parse; otherwise `error` holds the message
// that every plan creation throws (the settings are fixed for the life of the process, so a later plan
// cannot succeed where the first one failed).
struct environment {
  isa forced_isa = isa::automatic;  // GROUPNORM_ISA
  std::size_t stream_bytes = 0;     // GROUPNORM_STREAM_BYTES, else the built-in threshold
  std::string error;                // empty when every variable parsed
};

// Parses the variables as returned by lookup(name) (nullptr: unset). Pure: tests call it with their own
// lookup.
environment parse_environment(const char* (*lookup)(const char* name));

// The settings of this process: read with std::getenv at the first call (the first plan creation), then
// cached for the life of the process. Thread-safe.
const environment& process_environment();

// Throws the environment's error, if it has one (groupnorm::invalid_argument).
void check_environment();

}  // namespace groupnorm::detail
