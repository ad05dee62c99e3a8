// `clisc version [--json]`: the version and the build's capabilities.
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/command.h"
#include "version.h"

namespace clisc::cli {
namespace {

int RunVersion(const std::vector<std::string>& args) {
  ArgParser parser("version", "version [--json]", "Print the clisc version.");
  parser.Flag("json", "print JSON");
  if (int rc = ParseCommandLine(parser, args); rc >= 0) return rc;
  if (parser.GetFlag("json")) {
    std::cout << nlohmann::json{{"name", "clisc"}, {"version", kVersion}}.dump() << "\n";
  } else {
    std::cout << "clisc " << kVersion << "\n";
  }
  return kExitOk;
}

}  // namespace
CLISC_REGISTER_COMMAND("version", "print the version", RunVersion);
}  // namespace clisc::cli
