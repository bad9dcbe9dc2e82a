// Entry points of the tool's subcommands: argv[0] is the subcommand name. Each returns the process exit
// status.
#pragma once

namespace groupnorm::tool {
int bench_main(int argc, char** argv);
int run_main(int argc, char** argv);
int floor_main(int argc, char** argv);
}  // namespace groupnorm::tool
