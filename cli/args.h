// A small declarative argument parser for the clisc subcommands: each command declares its
// options once, and parsing, validation messages and --help text all come from that one list.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace clisc::cli {

class ArgParser {
 public:
  // `usage` is the synopsis line after "clisc", e.g. "eval --pred PATH --gt PATH [--json]".
  ArgParser(std::string command, std::string usage, std::string summary);

  // An option with a value: --name VALUE or --name=VALUE.
  ArgParser& Option(const std::string& name, const std::string& metavar, const std::string& help,
                    std::optional<std::string> default_value = std::nullopt, bool required = false);
  // A boolean switch: --name.
  ArgParser& Flag(const std::string& name, const std::string& help);
  // Positional arguments, in order.
  ArgParser& Positional(const std::string& name, const std::string& help, bool required = true);
  // Free text appended to --help (examples, notes).
  ArgParser& Epilog(const std::string& text);

  // Parses argv (without the program and command names). Returns INVALID_ARGUMENT naming the
  // offending option. After a successful parse, help_requested() tells whether --help was given.
  Status Parse(const std::vector<std::string>& args);

  bool help_requested() const { return help_requested_; }
  std::string Help() const;

  bool Has(const std::string& name) const;  // option given or defaulted, or flag set
  bool GetFlag(const std::string& name) const;
  std::string Get(const std::string& name) const;  // "" when absent
  StatusOr<long long> GetInt(const std::string& name) const;
  StatusOr<double> GetDouble(const std::string& name) const;
  std::string GetPositional(const std::string& name) const;

 private:
  struct Spec {
    std::string name, metavar, help;
    std::optional<std::string> default_value;
    bool required = false;
    bool is_flag = false;
  };
  struct PositionalSpec {
    std::string name, help;
    bool required = true;
  };
  const Spec* Find(const std::string& name) const;

  std::string command_, usage_, summary_, epilog_;
  std::vector<Spec> specs_;
  std::vector<PositionalSpec> positional_specs_;
  std::map<std::string, std::string> values_;
  std::map<std::string, std::string> positionals_;
  bool help_requested_ = false;
};

// ArgParser keeps one value per option, so a repeatable option (--set KEY=VALUE) is taken out of
// `args` first: every `--NAME VALUE` and `--NAME=VALUE` is appended to `values`, in order.
// INVALID_ARGUMENT when the last argument is `--NAME` with no value.
Status TakeRepeatedOption(std::vector<std::string>& args, const std::string& name,
                          std::vector<std::string>& values);

}  // namespace clisc::cli
