// Run by ctest with GROUPNORM_STREAM_BYTES=12x: every plan creation, through every entry point, fails with a
// message naming the variable, its value and what was expected, and writes nothing.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "groupnorm/groupnorm.h"
#include "groupnorm/groupnorm.hpp"

namespace {

void check_message(const std::string& msg) {
  INFO(msg);
  CHECK(msg.find("GROUPNORM_STREAM_BYTES = '12x'") != std::string::npos);
  CHECK(msg.find("expected a decimal byte count") != std::string::npos);
}

}  // namespace

TEST_CASE("an unparsable GROUPNORM_STREAM_BYTES fails every plan creation and every one-shot call") {
  const char* value = std::getenv("GROUPNORM_STREAM_BYTES");
  REQUIRE_MESSAGE(value != nullptr, "run through ctest, which sets GROUPNORM_STREAM_BYTES=12x");
  REQUIRE(std::string(value) == "12x");
  groupnorm::problem p;
  p.channels = 8;
  p.num_groups = 2;
  for (int attempt = 0; attempt < 2; ++attempt) {  // the error is kept, not reported once
    try {
      groupnorm::plan pl(p);
      FAIL("plan creation succeeded");
    } catch (const groupnorm::invalid_argument& e) {
      check_message(e.what());
    }
  }
  std::vector<float> x(8, 1.0f), y(8, -7.0f);
  CHECK(gn_group_norm_f32(x.data(), y.data(), nullptr, nullptr, 1, 8, 1, 2, 1e-5f, 1) == GN_INVALID_ARGUMENT);
  check_message(gn_last_error());
  CHECK(y == std::vector<float>(8, -7.0f));
}
