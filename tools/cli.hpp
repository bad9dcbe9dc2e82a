// The `groupnorm` tool's command-line conventions on top of CLI11: help layout, one-line errors, value rules.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace groupnorm::tool::cli {

// Help of `app`: `usage` (its synopsis and what it does), then the options, then the footer. The app's own
// description stays one line, for the list of commands.
void describe(CLI::App& app, std::string usage);

// Validators whose messages name what was expected; CLI11 prefixes the option name ("--groups: ...").
CLI::Validator count_in(std::size_t min, std::size_t max);  // a decimal integer in [min, max]
CLI::Validator float_value();                               // a number that fits a float (NaN and inf pass)
CLI::Validator positive_number();                           // a finite number > 0
CLI::Validator one_of(std::vector<std::string> names);      // exactly one of `names`
CLI::Validator non_empty(const char* what);                 // a non-empty string, e.g. "a file name"

// A library or tool message as one line, without the library's "groupnorm: " prefix.
std::string one_line(std::string message);

// "a, b or c".
std::string either(const std::vector<std::string>& names);

// The library's canonical names of each value (its to_string), in value order, for option lists and help:
// an enum value added to the library is accepted here without another edit.
std::vector<std::string> layout_names();
std::vector<std::string> activation_names();
std::vector<std::string> isa_names();  // "automatic", then every kernel family of the library

// The subcommand (or `app` itself) selected on the parsed command line, with its full name ("groupnorm run").
const CLI::App& selected(const CLI::App& app);
std::string full_name(const CLI::App& app);

// Parses argv for `app`. Returns -1 when parsing succeeded and the caller should go on; otherwise the exit
// status after printing help (0, stdout) or a one-line error naming the command (2, stderr).
int parse(CLI::App& app, int argc, const char* const* argv);

}  // namespace groupnorm::tool::cli
