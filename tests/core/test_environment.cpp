// The GROUPNORM_* environment: what parses, what is an error (naming the variable, its value and what was
// expected), and that the process reads it once.
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "plan/environment.hpp"
#include "test_util.hpp"

namespace {

// The variables a parse sees; a lookup function cannot capture, so the map is a file-level variable.
std::map<std::string, std::string> g_vars;

const char* lookup(const char* name) {
  const auto it = g_vars.find(name);
  return it == g_vars.end() ? nullptr : it->second.c_str();
}

groupnorm::detail::environment parse(std::map<std::string, std::string> vars) {
  g_vars = std::move(vars);
  return groupnorm::detail::parse_environment(lookup);
}

bool contains(const std::string& s, const std::string& needle) {
  return s.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("environment: unset variables give automatic family selection and the built-in stream threshold") {
  const auto env = parse({});
  CHECK(env.error.empty());
  CHECK(env.forced_isa == groupnorm::isa::automatic);
  CHECK(env.stream_bytes == std::size_t{16} << 20);
}

TEST_CASE("environment: GROUPNORM_ISA names a family or automatic") {
  CHECK(parse({{"GROUPNORM_ISA", "scalar"}}).forced_isa == groupnorm::isa::scalar);
  CHECK(parse({{"GROUPNORM_ISA", "avx2"}}).forced_isa == groupnorm::isa::avx2);
  CHECK(parse({{"GROUPNORM_ISA", "avx512"}}).forced_isa == groupnorm::isa::avx512);
  CHECK(parse({{"GROUPNORM_ISA", "automatic"}}).forced_isa == groupnorm::isa::automatic);
  for (const char* bad : {"", "AVX2", "sse", "avx2 ", "scalar,avx2"}) {
    const auto env = parse({{"GROUPNORM_ISA", bad}});
    INFO("GROUPNORM_ISA='" << bad << "': " << env.error);
    CHECK(contains(env.error, "GROUPNORM_ISA"));
    CHECK(contains(env.error, std::string("'") + bad + "'"));
    CHECK(contains(env.error, "expected one of automatic, scalar"));
  }
}

TEST_CASE("environment: GROUPNORM_STREAM_BYTES is a decimal byte count, anything else is an error") {
  CHECK(parse({{"GROUPNORM_STREAM_BYTES", "0"}}).stream_bytes == 0);
  CHECK(parse({{"GROUPNORM_STREAM_BYTES", "1048576"}}).stream_bytes == 1048576);
  CHECK(parse({{"GROUPNORM_STREAM_BYTES", "18446744073709551615"}}).stream_bytes == SIZE_MAX);
  for (const char* bad : {"", "abc", "12x", "-1", "+5", " 5", "5 ", "1e6", "18446744073709551616"}) {
    const auto env = parse({{"GROUPNORM_STREAM_BYTES", bad}});
    INFO("GROUPNORM_STREAM_BYTES='" << bad << "': " << env.error);
    CHECK(contains(env.error, "GROUPNORM_STREAM_BYTES"));
    CHECK(contains(env.error, std::string("'") + bad + "'"));
    CHECK(contains(env.error, "expected a decimal byte count"));
  }
}

TEST_CASE("environment: errors in both variables are both reported") {
  const auto env = parse({{"GROUPNORM_ISA", "x"}, {"GROUPNORM_STREAM_BYTES", "y"}});
  CHECK(contains(env.error, "GROUPNORM_ISA = 'x'"));
  CHECK(contains(env.error, "GROUPNORM_STREAM_BYTES = 'y'"));
}

TEST_CASE("environment: the process reads it once, so a later change does not reach new plans") {
  groupnorm::problem p;
  p.channels = 8;
  p.num_groups = 2;
  const groupnorm::plan first(p);  // reads the environment if nothing did before
  const char* old = std::getenv("GROUPNORM_STREAM_BYTES");
  const std::string saved = old ? old : "";
  ::setenv("GROUPNORM_STREAM_BYTES", "not a number", 1);
  CHECK_NOTHROW(groupnorm::plan{p});
  if (old)
    ::setenv("GROUPNORM_STREAM_BYTES", saved.c_str(), 1);
  else
    ::unsetenv("GROUPNORM_STREAM_BYTES");
}
