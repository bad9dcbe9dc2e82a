// `groupnorm run`'s command line (CLI11): its options, help text and exit statuses; tools/run.cpp does the
// work.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>

#include "cli.hpp"
#include "commands.hpp"
#include "npy.hpp"
#include "run.hpp"

namespace groupnorm::tool {
namespace {

constexpr const char* kUsage =
    "usage: groupnorm run --x X.npy --groups N --out Y.npy [--gamma G.npy] [--beta B.npy] [--eps E]\n"
    "                     [--threads T] [--layout L] [--activation A]\n"
    "                     [--residual R.npy [--sum S.npy]] [--mean M.npy] [--rstd R.npy] [--stats S.npz]\n"
    "                     [--isa K] [--verbose]\n"
    "\n"
    "  GroupNorm of the array in X.npy, written to Y.npy with the same shape and dtype:\n"
    "    y = gamma[c] * (x - mean) / sqrt(var + eps) + beta[c]\n"
    "  with mean and (population) var taken over each (sample, group) slice.\n";

constexpr const char* kFooter =
    "Files: NumPy .npy, format 1.0 or 2.0, C order, little-endian. x (and residual) may be float32 ('<f4'),\n"
    "float16 ('<f2') or bfloat16 stored as its raw bits: '<u2' (np.save(f, x.view(np.uint16))) or '|V2'\n"
    "(ml_dtypes.bfloat16); y has the dtype and descr of x. gamma and beta are float32 (float16 / bfloat16\n"
    "files are widened exactly). Options also accept the form --name=value.\n"
    "\n"
    "Exit status: 0 success; 2 bad usage, unreadable or malformed input, or arguments the library rejects\n"
    "(one line on stderr, no output written); 1 an output could not be created or written (a missing\n"
    "directory, no permission, a full disk), or another failure.";

}  // namespace

std::function<int()> add_run(CLI::App& parent) {
  CLI::App& app = *parent.add_subcommand("run", "GroupNorm of a NumPy .npy file into another");
  cli::describe(app, kUsage);
  app.footer(kFooter);
  auto o = std::make_shared<run_command::options>();
  auto file = [&](const char* name, std::string& dst, const char* text, const char* help) {
    app.add_option(name, dst, help)->option_text(text)->check(cli::non_empty("a file name"));
  };
  file(
      "--x", o->x, "X.npy",
      "input, C order, rank >= 2. nchw: (batch, channels, spatial...);\nnhwc: (batch, spatial..., channels)");
  app.add_option_function<std::size_t>(
         "--groups", [o](std::size_t n) { o->groups = n, o->have_groups = true; },
         "number of groups; must divide channels")
      ->option_text("N")
      ->check(cli::count_in(0, SIZE_MAX));
  file("--out", o->out, "Y.npy",
       "output (may be the same path as --x: the file is replaced only on success)");
  file("--gamma", o->gamma, "G.npy", "per-channel scale, shape (channels,); default 1");
  file("--beta", o->beta, "B.npy", "per-channel shift, shape (channels,); default 0");
  // strtof, not CLI11's conversion, so the value rounds once, as np.float32(E) does.
  app.add_option_function<std::string>(
         "--eps", [o](const std::string& v) { o->eps = std::strtof(v.c_str(), nullptr); },
         "epsilon added to the variance, finite and >= 0 (default 1e-5)")
      ->option_text("E")
      ->check(cli::float_value());
  app.add_option(
         "--threads", o->threads,
         "run in a tbb::task_arena of T threads (default and cap: all\nhardware threads); the output bits do "
         "not depend on T")
      ->option_text("T")
      ->check(cli::count_in(1, 65536));
  app.add_option_function<std::string>(
         "--layout", [o](const std::string& v) { o->lay = parse_layout(v); },
         cli::either(cli::layout_names()) + " (default nchw; nhwc is channels last)")
      ->option_text("L")
      ->check(cli::one_of(cli::layout_names()));
  app.add_option_function<std::string>(
         "--activation", [o](const std::string& v) { o->act = parse_activation(v); },
         cli::either(cli::activation_names()) +
             " (default none; gelu is the erf form),\napplied after the affine transform")
      ->option_text("A")
      ->check(cli::one_of(cli::activation_names()));
  file("--residual", o->residual, "R.npy", "normalize x + residual (same shape and dtype as x)");
  file("--sum", o->sum, "S.npy", "also write x + residual (needs --residual)");
  file("--mean", o->mean, "M.npy",
       "also write the per-(sample, group) means, float32, shape (batch, groups)");
  file("--rstd", o->rstd, "R.npy", "also write 1 / sqrt(var + eps), float32, shape (batch, groups)");
  file("--stats", o->stats, "S.npz", "also write both as an .npz archive with members 'mean' and 'rstd'");
  app.add_option_function<std::string>(
         "--isa", [o](const std::string& v) { o->kernel = parse_isa(v); },
         "kernel family: " + cli::either(cli::isa_names()) +
             "\n(default automatic; all families give identical bits)")
      ->option_text("K")
      ->check(cli::one_of(cli::isa_names()));
  app.add_flag("-v,--verbose", o->verbose, "progress on stderr (automatic for inputs larger than 1 GB)");

  return [o] {
    try {
      run_command::check(*o);
      return run_command::execute(*o);
    } catch (const run_command::failure& f) {
      std::fprintf(stderr, "groupnorm run: %s\n", cli::one_line(f.message).c_str());
      return f.status;
    } catch (const npy::error& e) {
      std::fprintf(stderr, "groupnorm run: %s\n", cli::one_line(e.what()).c_str());
      return 2;
    } catch (const std::invalid_argument& e) {  // groupnorm::invalid_argument: the library's own message
      std::fprintf(stderr, "groupnorm run: %s\n", cli::one_line(e.what()).c_str());
      return 2;
    } catch (const std::bad_alloc&) {
      std::fprintf(stderr, "groupnorm run: out of memory\n");
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "groupnorm run: %s\n", cli::one_line(e.what()).c_str());
      return 1;
    }
  };
}

}  // namespace groupnorm::tool
