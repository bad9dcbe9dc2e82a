// `groupnorm run` (tools/run.cpp executes it, tools/run_cli.cpp parses its command line): what the parser
// fills in, and the error that ends the command.
#pragma once

#include <cstddef>
#include <string>

#include "groupnorm/groupnorm.hpp"

namespace groupnorm::tool::run_command {

// The command line, each option's own value already checked by the parser.
struct options {
  std::string x, out, gamma, beta, residual, sum, mean, rstd, stats;
  std::size_t groups = 0;
  bool have_groups = false;
  float eps = 1e-5f;
  int threads = 0;
  layout lay = layout::nchw;
  activation act = activation::none;
  isa kernel = isa::automatic;
  bool verbose = false;
};

// An error that ends the command: message (one line) and exit status.
struct failure {
  std::string message;
  int status;
};

// Checks that span several options (throws failure with status 2).
void check(const options& o);
// Reads, validates, normalizes and writes; returns the exit status or throws failure, npy::error,
// groupnorm::invalid_argument or std::bad_alloc.
int execute(const options& o);

}  // namespace groupnorm::tool::run_command
