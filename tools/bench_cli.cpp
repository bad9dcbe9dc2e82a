// `groupnorm bench`'s command line (CLI11): options, help text with the default suite, and exit statuses;
// tools/bench.cpp does the timing.
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench.hpp"
#include "bench_suite.hpp"
#include "cli.hpp"
#include "commands.hpp"

namespace groupnorm::tool {
namespace {

constexpr const char* kUsage =
    "usage: groupnorm bench [--shape B,C,H,W,G]... [--threads N]... [--inplace] [--isa NAME]\n"
    "                       [--layout L] [--activation A]\n"
    "                       [--direction forward|backward] [--seconds S] [--json FILE]\n"
    "                       [--consumer] [--api cpp|c|c-plan]\n"
    "\n"
    "  Times GroupNorm (float32, --layout) on a prepared plan, and copies of the same bytes in the same\n"
    "  tbb::task_arena by three strategies (one memcpy per thread, 256 KiB memcpy pieces, non-temporal\n"
    "  stores), each in its own loop on warm buffers. ratio = median GroupNorm time / median time of the\n"
    "  fastest copy (1.0 = the memory floor; the winning strategy is printed). Every result is first\n"
    "  checked against a float64 reference (exit 1 on mismatch).\n";

// The default suite's shapes, one line each, for --help.
std::string suite_text() {
  std::string s = "Default suite (B,C,H,W,G):\n";
  for (const bench_shape& sh : default_suite())
    s += "  " + sh.name + " = " + std::to_string(sh.b) + "," + std::to_string(sh.c) + "," +
         std::to_string(sh.h) + "," + std::to_string(sh.w) + "," + std::to_string(sh.g) + "\n";
  return s +
         "\nExit status: 0 success; 1 a result did not match its reference or --json could not be written;\n"
         "2 bad usage or a shape the library rejects.";
}

// "B,C,H,W,G" with five positive integers.
CLI::Validator shape_value() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        bench_shape s;
        char tail = 0;
        if (std::sscanf(v.c_str(), "%zu,%zu,%zu,%zu,%zu%c", &s.b, &s.c, &s.h, &s.w, &s.g, &tail) != 5 ||
            v.find('-') != std::string::npos)
          return "expected B,C,H,W,G (five non-negative integers), got '" + v + "'";
        return {};
      },
      "B,C,H,W,G");
}

}  // namespace

std::function<int()> add_bench(CLI::App& parent) {
  CLI::App& app =
      *parent.add_subcommand("bench", "time GroupNorm against the fastest copy of the same bytes");
  cli::describe(app, kUsage);
  app.footer(suite_text());
  auto o = std::make_shared<bench_command::options>();
  app.add_option_function<std::vector<std::string>>(
         "--shape",
         [o](const std::vector<std::string>& vs) {
           for (const std::string& v : vs) {
             bench_shape s;
             std::sscanf(v.c_str(), "%zu,%zu,%zu,%zu,%zu", &s.b, &s.c, &s.h, &s.w, &s.g);
             s.name = "custom_" + v;
             o->shapes.push_back(s);
           }
         },
         "B,C,H,W,G; repeatable (default: the suite below)")
      ->option_text("B,C,H,W,G")
      ->allow_extra_args(false)
      ->take_all()
      ->check(shape_value());
  app.add_option("--threads", o->threads, "arena size; repeatable (default: 1 and all hardware threads)")
      ->option_text("N")
      ->allow_extra_args(false)
      ->take_all()
      ->check(cli::count_in(1, 65536));
  app.add_flag("--inplace", o->inplace, "normalize x in place instead of into y");
  app.add_flag(
      "--consumer", o->consumer,
      "time each run (and each copy of the floor) followed by a read of y, as a following layer would: "
      "the figure that decides whether y should bypass the cache");
  app.add_option_function<std::string>(
         "--layout", [o](const std::string& v) { o->memory_layout = parse_layout(v); },
         cli::either(cli::layout_names()) +
             " (default nchw); nhwc: channels-last x / y (checked against\nthe NCHW reference by "
             "transposing, "
             "outside the timed part)")
      ->option_text("L")
      ->check(cli::one_of(cli::layout_names()));
  app.add_option_function<std::string>(
         "--isa", [o](const std::string& v) { o->kernel = parse_isa(v); },
         cli::either(cli::isa_names()) + " (default automatic)")
      ->option_text("NAME")
      ->check(cli::one_of(cli::isa_names()));
  app.add_option_function<std::string>(
         "--direction", [o](const std::string& v) { o->backward = v == "backward"; },
         "forward (default) | backward: time plan::run_backward (saved\nstatistics given; dx, dgamma and "
         "dbeta "
         "computed) against the\nfastest copy of 1.5x the forward's bytes")
      ->option_text("DIR")
      ->check(cli::one_of({"forward", "backward"}));
  app.add_option_function<std::string>(
         "--activation", [o](const std::string& v) { o->act = parse_activation(v); },
         cli::either(cli::activation_names()) +
             " (default none): the fused epilogue\n(problem::fused_activation); the float64 reference "
             "applies\n"
             "the same activation before the comparison")
      ->option_text("A")
      ->check(cli::one_of(cli::activation_names()));
  app.add_option("--api", o->api,
                 "cpp (default): plan::run only. c: also time the one-shot C\ncall (gn_group_norm_f32, "
                 "gn_group_norm_ex for a layout or\nactivation); c-plan: gn_plan_run on a gn_arena. Each is "
                 "checked\nfor plan::run's bits, then timed interleaved with plan::run;\nthe line shows both "
                 "medians and the excess against its budget\n(c: 0.15 us, c-plan: 0.03 us)")
      ->option_text("API")
      ->check(cli::one_of({"cpp", "c", "c-plan"}));
  app.add_option("--seconds", o->seconds, "sampling time per row (default 0.25)")
      ->option_text("S")
      ->check(cli::positive_number());
  app.add_option("--json", o->json, "also write the rows as JSON")
      ->option_text("FILE")
      ->check(cli::non_empty("a file name"));
  return [o] {
    try {
      return bench_command::run(*o);
    } catch (const std::invalid_argument& e) {  // a shape or family the library rejects
      std::fprintf(stderr, "groupnorm bench: %s\n", cli::one_line(e.what()).c_str());
      return 2;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "groupnorm bench: %s\n", cli::one_line(e.what()).c_str());
      return 1;
    }
  };
}

}  // namespace groupnorm::tool
