// Golden hashes: a fixed suite of deterministic problems run on one kernel family, each output's hash
// compared with tests/golden/hashes.txt. Every family on every architecture must reproduce the same file.
//   groupnorm_golden --isa NAME --check FILE   exit 0 when every hash matches, 1 on any difference, 77 when
//                                              this CPU or build cannot run the family (ctest: SKIPPED)
//   groupnorm_golden --isa NAME --write FILE   regenerate FILE from this family
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <oneapi/tbb/task_arena.h>

#include "golden_cases.hpp"
#include "groupnorm/groupnorm.hpp"

namespace {

constexpr int kSkipped = 77;  // SKIP_RETURN_CODE of the ctest entries

struct options {
  std::string isa_name, check_file, write_file;
};

bool parse(int argc, char** argv, options& o) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--isa") {
      o.isa_name = argv[i + 1];
    } else if (a == "--check") {
      o.check_file = argv[i + 1];
    } else if (a == "--write") {
      o.write_file = argv[i + 1];
    } else {
      return false;
    }
  }
  return argc % 2 == 1 && !o.isa_name.empty() && (o.check_file.empty() != o.write_file.empty());
}

// Hash lines of FILE by case name; '#' starts a comment line.
std::map<std::string, std::string> read_hashes(const std::string& path, bool& ok) {
  std::map<std::string, std::string> out;
  std::ifstream in(path);
  ok = static_cast<bool>(in);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const std::size_t space = line.find(' ');
    out[line.substr(0, space)] = space == std::string::npos ? "" : line.substr(space + 1);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  if (!parse(argc, argv, o)) {
    std::fprintf(stderr, "usage: groupnorm_golden --isa NAME (--check FILE | --write FILE)\n");
    return 2;
  }
  groupnorm::isa family{};
  if (!golden::parse_isa(o.isa_name, family)) {
    std::fprintf(stderr, "groupnorm_golden: --isa '%s' is not a kernel family of this library\n",
                 o.isa_name.c_str());
    return 2;
  }
  if (!groupnorm::isa_supported(family)) {
    std::printf("SKIPPED: kernel family '%s' is not supported by this CPU or build\n", o.isa_name.c_str());
    return kSkipped;
  }

  // Two threads: the hashes must not depend on it (determinism), and it keeps the run short under qemu.
  tbb::task_arena arena(2);
  const std::vector<golden::case_spec> cases = golden::suite();
  if (!o.write_file.empty()) {
    std::ofstream out(o.write_file);
    out << "# Golden hashes of tests/golden (FNV-1a 64 of each output's bytes: y mean rstd sum, '-' when\n"
           "# absent). Regenerate with the `update_golden_hashes` build target (see docs/golden.md).\n";
    for (const golden::case_spec& c : cases)
      out << c.name() << ' ' << golden::run_case(c, family, arena) << '\n';
    if (!out) {
      std::fprintf(stderr, "groupnorm_golden: cannot write %s\n", o.write_file.c_str());
      return 1;
    }
    std::printf("wrote %zu golden hashes from family %s to %s\n", cases.size(), o.isa_name.c_str(),
                o.write_file.c_str());
    return 0;
  }

  bool readable = false;
  const std::map<std::string, std::string> expected = read_hashes(o.check_file, readable);
  if (!readable) {
    std::fprintf(stderr, "groupnorm_golden: cannot read %s\n", o.check_file.c_str());
    return 1;
  }
  std::size_t matched = 0, differ = 0, missing = 0;
  for (const golden::case_spec& c : cases) {
    const std::string got = golden::run_case(c, family, arena);
    const auto it = expected.find(c.name());
    if (it == expected.end()) {
      ++missing;
      std::printf("MISSING %s: no committed hash (got %s)\n", c.name().c_str(), got.c_str());
    } else if (it->second != got) {
      ++differ;
      std::printf("DIFFER  %s\n  expected %s\n  got      %s\n", c.name().c_str(), it->second.c_str(),
                  got.c_str());
    } else {
      ++matched;
    }
  }
  const std::size_t stale = expected.size() - matched - differ;
  if (stale != 0) std::printf("%zu committed hashes name no case of the suite\n", stale);
  std::printf("golden: family %s (plan reports %s): %zu cases, %zu equal to %s, %zu differ, %zu missing\n",
              o.isa_name.c_str(), golden::selected_name(family).c_str(), cases.size(), matched,
              o.check_file.c_str(), differ, missing);
  return differ == 0 && missing == 0 && stale == 0 ? 0 : 1;
}
