// `groupnorm` command-line tool: subcommands over the library.
#include <cstdio>
#include <cstring>
#include <string>

#include "commands.hpp"

namespace {
void usage(std::FILE* out) {
  std::fputs(
      "usage: groupnorm <command> [options]\n"
      "commands:\n"
      "  bench   time GroupNorm against a parallel memcpy of the same bytes (groupnorm bench --help)\n"
      "  run     GroupNorm of a NumPy .npy file into another (groupnorm run --help)\n"
      "  floor   minimal hand-written kernels that bound what GroupNorm can reach here (groupnorm floor "
      "--help)\n",
      out);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const std::string cmd = argv[1];
  if (cmd == "bench") return groupnorm::tool::bench_main(argc - 1, argv + 1);
  if (cmd == "run") return groupnorm::tool::run_main(argc - 1, argv + 1);
  if (cmd == "floor") return groupnorm::tool::floor_main(argc - 1, argv + 1);
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    usage(stdout);
    return 0;
  }
  std::fprintf(stderr, "groupnorm: unknown command '%s'\n", cmd.c_str());
  usage(stderr);
  return 2;
}
