// The GROUPNORM_* environment: parsed once per process, errors kept and reported at each plan creation.
#include "plan/environment.hpp"

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include "kernels/dispatch.hpp"
#include "plan/tuning.hpp"

namespace groupnorm::detail {
namespace {

std::string unparsable(const char* name, const char* value, const std::string& expected) {
  return std::string("groupnorm: environment variable ") + name + " = '" + value + "', expected " + expected;
}

}  // namespace

environment parse_environment(const char* (*lookup)(const char* name)) {
  environment env;
  env.stream_bytes = kStreamBytes;
  if (const char* v = lookup("GROUPNORM_ISA")) {
    if (!parse_isa_name(v, env.forced_isa))
      env.error = unparsable("GROUPNORM_ISA", v, "one of " + isa_names());
  }
  if (const char* v = lookup("GROUPNORM_STREAM_BYTES")) {
    // Digits only: a sign, blanks, a suffix or an empty value is an error, never a silent 0 (streaming
    // every output) or a silent default.
    const char* end = v + std::strlen(v);
    std::size_t bytes = 0;
    const std::from_chars_result r = std::from_chars(v, end, bytes);
    if (v == end || r.ec != std::errc() || r.ptr != end) {
      const std::string msg =
          unparsable("GROUPNORM_STREAM_BYTES", v, "a decimal byte count from 0 to 18446744073709551615");
      env.error = env.error.empty() ? msg : env.error + "; " + msg.substr(std::strlen("groupnorm: "));
    } else {
      env.stream_bytes = bytes;
    }
  }
  return env;
}

const environment& process_environment() {
  static const environment env =
      parse_environment([](const char* name) -> const char* { return std::getenv(name); });
  return env;
}

void check_environment() {
  const environment& env = process_environment();
  if (!env.error.empty()) throw invalid_argument(env.error);
}

}  // namespace groupnorm::detail
