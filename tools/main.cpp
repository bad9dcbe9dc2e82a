// `groupnorm` command-line tool: subcommands over the library (tools/tool.cpp).
#include "commands.hpp"

int main(int argc, char** argv) {
  return groupnorm::tool::tool_main(argc, argv);
}
