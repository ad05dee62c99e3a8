// The subcommand registry behind `clisc <command>`. Each command lives in its own file
// (cli/cmd_<name>.cc) and registers itself with CLISC_REGISTER_COMMAND; main() dispatches.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace clisc::cli {

// Exit codes shared by all commands.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the work ran and found a problem / failed
inline constexpr int kExitUsage = 2;    // bad command line or config

struct CommandInfo {
  std::string name;
  std::string summary;  // one line, shown by `clisc --help`
  // Runs with the arguments after the command name; returns the process exit code.
  std::function<int(const std::vector<std::string>& args)> run;
};

std::vector<CommandInfo>& CommandRegistry();

struct CommandRegistrar {
  explicit CommandRegistrar(CommandInfo info) { CommandRegistry().push_back(std::move(info)); }
};

}  // namespace clisc::cli

#define CLISC_REGISTER_COMMAND(name, summary, fn) \
  static ::clisc::cli::CommandRegistrar clisc_command_##fn({name, summary, fn})

namespace clisc::cli {
class ArgParser;
// Parses `args` into `parser`. Returns -1 when the command should go on; otherwise the exit code
// to return at once (0 after printing --help, kExitUsage after printing the error).
int ParseCommandLine(ArgParser& parser, const std::vector<std::string>& args);
}  // namespace clisc::cli
