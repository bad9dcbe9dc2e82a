// The `groupnorm` command line: subcommands, --version, and the exit status convention (commands.hpp).
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "cli.hpp"
#include "commands.hpp"
#include "machine.hpp"

namespace groupnorm::tool {

int tool_main(int argc, const char* const* argv) {
  CLI::App app("Group Normalization on CPUs", "groupnorm");
  cli::describe(app,
                "usage: groupnorm <command> [options]\n"
                "       groupnorm --version\n");
  app.footer(
      "Run `groupnorm <command> --help` for a command's options.\n"
      "Exit status: 0 success; 1 the work failed (an output could not be created or written, a result did\n"
      "not match its float64 reference); 2 bad usage or input rejected (one line on stderr, nothing "
      "written).");
  bool version = false;
  app.add_flag("--version", version,
               "print the version, the kernel family this CPU gets and the oneTBB version");
  app.require_subcommand(0, 1);
  std::vector<std::pair<CLI::App*, std::function<int()>>> commands;
  for (auto add : {add_bench, add_run, add_floor}) {
    auto run = add(app);
    commands.emplace_back(app.get_subcommands({}).back(), std::move(run));
  }

  if (const int status = cli::parse(app, argc, argv); status >= 0) return status;
  if (version) {
    std::string family;
    try {
      family = to_string(automatic_isa());
    } catch (const std::exception& e) {  // e.g. a GROUPNORM_ISA this CPU cannot run
      family = "none (" + cli::one_line(e.what()) + ")";
    }
    std::printf("groupnorm %s\nkernel family: %s (supported here: %s)\noneTBB: %s\n",
                GROUPNORM_VERSION_STRING, family.c_str(), supported_isas().c_str(), tbb_version().c_str());
    return 0;
  }
  for (auto& [sub, run] : commands)
    if (sub->parsed()) return run();
  std::fprintf(stderr, "groupnorm: expected a command: bench, run or floor (see groupnorm --help)\n");
  return 2;
}

}  // namespace groupnorm::tool
