// Runtime skips for doctest cases: a case whose precondition is missing says why, and ctest reports it
// SKIPPED.
#pragma once

#include <cstdio>
#include <string>

namespace gn_test {

// ctest marks a test whose output contains this line SKIPPED (SKIP_REGULAR_EXPRESSION, set for every doctest
// suite in tests/CMakeLists.txt); under ctest each case is its own process, so the mark covers one case.
inline constexpr const char* kSkipMarker = "GROUPNORM-TEST-SKIPPED";

// Reports that the running case checks nothing, and why. The caller returns right after, before any check.
inline void report_skip(const std::string& reason) {
  std::printf("%s: %s\n", kSkipMarker, reason.c_str());
  std::fflush(stdout);
}

}  // namespace gn_test
