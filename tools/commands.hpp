// The `groupnorm` tool: one CLI11 app whose subcommands each register their options and what runs them.
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace groupnorm::tool {

// The whole command line (argv[0] is the program name); returns the process exit status:
// 0 success, 1 the work failed (an output could not be created or written, a result did not match its
// reference), 2 bad usage or input rejected before anything was written.
int tool_main(int argc, const char* const* argv);

// Each adds its subcommand to `app` and returns what runs it once the command line has parsed.
std::function<int()> add_bench(CLI::App& app);
std::function<int()> add_run(CLI::App& app);
std::function<int()> add_floor(CLI::App& app);

}  // namespace groupnorm::tool
