// The `groupnorm` tool's command-line conventions on top of CLI11 (see cli.hpp).
#include "cli.hpp"

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <utility>

#include "groupnorm/groupnorm.hpp"

namespace groupnorm::tool::cli {
namespace {

// CLI11's layout with a hand-written synopsis in place of its generated "Usage:" line.
class help_format : public CLI::Formatter {
 public:
  explicit help_format(std::string usage) : usage_(std::move(usage)) { column_width(24); }
  std::string make_help(const CLI::App* app, std::string, CLI::AppFormatMode mode) const override {
    if (mode == CLI::AppFormatMode::Sub) return make_expanded(app);
    return usage_ + make_positionals(app) + make_groups(app, mode) + make_subcommands(app, mode) + "\n" +
           make_footer(app);
  }

 private:
  std::string usage_;
};

std::string in_quotes(const std::string& v) {
  return "'" + v + "'";
}

// "--x: 1 required TEXT missing" and the like: the option name before the first colon.
std::string option_name(const std::string& what) {
  return what.substr(0, what.find(':'));
}

std::string error_text(const CLI::App& app, const CLI::Error& e) {
  const std::string what = e.what();
  if (dynamic_cast<const CLI::ExtrasError*>(&e)) {
    const std::vector<std::string> extra = selected(app).remaining();
    if (extra.empty()) return what;
    const std::string& first = extra.front();
    if (first.rfind('-', 0) == 0) return "unknown option " + in_quotes(first.substr(0, first.find('=')));
    if (&selected(app) == &app && !app.get_subcommands({}).empty())
      return "unknown command " + in_quotes(first);
    return "unexpected argument " + in_quotes(first);
  }
  if (dynamic_cast<const CLI::ArgumentMismatch*>(&e) && what.find("missing") != std::string::npos)
    return option_name(what) + " needs a value";
  return what;
}

}  // namespace

void describe(CLI::App& app, std::string usage) {
  app.formatter(std::make_shared<help_format>(std::move(usage)));
  app.set_help_flag("-h,--help", "print this help and exit");
  // A repeated option keeps its last value, so scripts can append overrides.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
}

std::string one_line(std::string message) {
  if (message.rfind("groupnorm: ", 0) == 0) message.erase(0, 11);
  for (char& c : message)
    if (c == '\n') c = ' ';
  return message;
}

CLI::Validator count_in(std::size_t min, std::size_t max) {
  const std::string expected =
      max != SIZE_MAX ? "expected an integer from " + std::to_string(min) + " to " + std::to_string(max)
      : min == 0      ? std::string("expected a non-negative integer")
                      : "expected an integer >= " + std::to_string(min);
  return CLI::Validator(
      [=](std::string& v) -> std::string {
        if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos)
          return expected + ", got " + in_quotes(v);
        errno = 0;
        const unsigned long long n = std::strtoull(v.c_str(), nullptr, 10);
        if (errno == ERANGE || n < min || n > max) return expected + ", got " + in_quotes(v);
        return {};
      },
      "INT");
}

CLI::Validator float_value() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        char* end = nullptr;
        errno = 0;
        const float f = std::strtof(v.c_str(), &end);
        if (v.empty() || end != v.c_str() + v.size()) return "expected a number, got " + in_quotes(v);
        if (errno == ERANGE && std::isinf(f)) return in_quotes(v) + " overflows float";
        return {};
      },
      "FLOAT");
}

CLI::Validator positive_number() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        char* end = nullptr;
        const double d = std::strtod(v.c_str(), &end);
        if (v.empty() || end != v.c_str() + v.size() || !std::isfinite(d) || !(d > 0))
          return "expected a positive number, got " + in_quotes(v);
        return {};
      },
      "NUMBER");
}

std::string either(const std::vector<std::string>& names) {
  std::string s;
  for (std::size_t i = 0; i < names.size(); ++i)
    s += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
  return s;
}

namespace {

// The public enums number their values from 0 without gaps; to_string names a value past the last "unknown".
template <class E>
std::vector<std::string> names_of() {
  std::vector<std::string> names;
  for (int i = 0;; ++i) {
    std::string name = to_string(static_cast<E>(i));
    if (name == "unknown") return names;
    names.push_back(std::move(name));
  }
}

}  // namespace

std::vector<std::string> layout_names() {
  return names_of<layout>();
}
std::vector<std::string> activation_names() {
  return names_of<activation>();
}
std::vector<std::string> isa_names() {
  std::vector<std::string> names{to_string(isa::automatic)};
  for (const isa k : known_isas()) names.push_back(to_string(k));
  return names;
}

CLI::Validator one_of(std::vector<std::string> names) {
  return CLI::Validator(
      [names](std::string& v) -> std::string {
        for (const std::string& n : names)
          if (v == n) return {};
        return "expected " + either(names) + ", got " + in_quotes(v);
      },
      "NAME");
}

CLI::Validator non_empty(const char* what) {
  return CLI::Validator(
      [what](std::string& v) -> std::string {
        return v.empty() ? std::string("needs ") + what : std::string();
      },
      "");
}

const CLI::App& selected(const CLI::App& app) {
  const CLI::App* a = &app;
  while (!a->get_subcommands().empty()) a = a->get_subcommands().front();
  return *a;
}

std::string full_name(const CLI::App& app) {
  return app.get_parent() ? full_name(*app.get_parent()) + " " + app.get_name() : app.get_name();
}

int parse(CLI::App& app, int argc, const char* const* argv) {
  // CLI11 reads "--x= --groups 2" as --x taking "--groups"; an empty inline value is an error of its own.
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--") break;
    if (a.rfind("--", 0) == 0 && a.size() > 3 && a.find('=') + 1 == a.size()) {
      std::string name = app.get_name();
      for (const CLI::App* sub : app.get_subcommands({}))
        if (argc > 1 && sub->get_name() == argv[1]) name += " " + sub->get_name();
      std::fprintf(stderr, "%s: %s needs a value (see %s --help)\n", name.c_str(),
                   a.substr(0, a.size() - 1).c_str(), name.c_str());
      return 2;
    }
  }
  try {
    app.parse(argc, argv);
    return -1;
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  } catch (const CLI::ParseError& e) {
    const std::string name = full_name(selected(app));
    std::fprintf(stderr, "%s: %s (see %s --help)\n", name.c_str(), error_text(app, e).c_str(), name.c_str());
    return 2;
  }
}

}  // namespace groupnorm::tool::cli
