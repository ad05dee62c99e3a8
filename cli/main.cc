// clisc: unsupervised brain tumor segmentation (CLISC) at cluster scale. This file only
// dispatches to the subcommands registered in cli/cmd_*.cc.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/command.h"
#include "common/logging.h"
#include "version.h"

namespace clisc::cli {

std::vector<CommandInfo>& CommandRegistry() {
  static std::vector<CommandInfo> registry;
  return registry;
}

int ParseCommandLine(ArgParser& parser, const std::vector<std::string>& args) {
  Status s = parser.Parse(args);
  if (!s.ok()) {
    std::cerr << "error: " << s.message() << "\n";
    return kExitUsage;
  }
  if (parser.help_requested()) {
    std::cout << parser.Help();
    return kExitOk;
  }
  return -1;
}

namespace {

void PrintTopLevelHelp() {
  auto commands = CommandRegistry();
  std::sort(commands.begin(), commands.end(),
            [](const CommandInfo& a, const CommandInfo& b) { return a.name < b.name; });
  std::cout << "usage: clisc [--log-level LEVEL] [--log-format text|json] <command> [<args>]\n"
               "       clisc --version | --help\n\n"
               "Unsupervised brain tumor segmentation in MRI (CLISC: CLIP slice labels, CAM,\n"
               "SAM pseudo-labels, 3D U-Net self-training with S3F), run on one machine or a\n"
               "cluster of GPU workers.\n\ncommands:\n";
  for (const auto& c : commands) {
    std::cout << "  " << c.name << std::string(c.name.size() < 14 ? 14 - c.name.size() : 1, ' ')
              << c.summary << "\n";
  }
  std::cout << "\nglobal options:\n"
               "  --log-level LEVEL     debug, info, warn, error or off [default: info]\n"
               "  --log-format FORMAT   text or json (one JSON object per line) [default: text]\n"
               "  --version             print the version and exit\n"
               "\nRun 'clisc <command> --help' for the options of a command.\n";
}

}  // namespace
}  // namespace clisc::cli

int main(int argc, char** argv) {
  using namespace clisc;
  using namespace clisc::cli;
  std::vector<std::string> args(argv + 1, argv + argc);
  LogLevel level = LogLevel::kInfo;
  LogFormat format = LogFormat::kText;
  size_t i = 0;
  // Global options come before the command name.
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--version") {
      std::cout << "clisc " << kVersion << "\n";
      return kExitOk;
    }
    if (a == "--help" || a == "-h" || a == "help") {
      if (a == "help" && i + 1 < args.size()) {
        args = {args[i + 1], "--help"};
        i = 0;
        break;
      }
      PrintTopLevelHelp();
      return kExitOk;
    }
    if (a == "--log-level" || a == "--log-format") {
      if (i + 1 >= args.size()) {
        std::cerr << "error: " << a << " needs a value\n";
        return kExitUsage;
      }
      const std::string& v = args[++i];
      if (a == "--log-level") {
        auto parsed = ParseLogLevel(v);
        if (!parsed.ok()) {
          std::cerr << "error: " << parsed.status().message() << "\n";
          return kExitUsage;
        }
        level = *parsed;
      } else {
        auto parsed = ParseLogFormat(v);
        if (!parsed.ok()) {
          std::cerr << "error: " << parsed.status().message() << "\n";
          return kExitUsage;
        }
        format = *parsed;
      }
      continue;
    }
    break;
  }
  if (i >= args.size()) {
    PrintTopLevelHelp();
    return kExitUsage;
  }
  InitLogging(level, format);
  const std::string name = args[i];
  std::vector<std::string> rest(args.begin() + static_cast<long>(i) + 1, args.end());
  for (const auto& c : CommandRegistry()) {
    if (c.name == name) return c.run(rest);
  }
  std::cerr << "error: unknown command '" << name << "' (see clisc --help)\n";
  return kExitUsage;
}
