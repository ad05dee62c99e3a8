// `clisc keygen --out STEM [--force]` and `clisc keygen --print-public FILE`: CurveZMQ key pairs
// for the coordinator and the workers. The public key goes to stdout alone, so that scripts can
// capture it; what was written goes to stderr.
#include <iostream>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/command.h"
#include "common/status.h"
#include "common/wire/curve_auth.h"

namespace clisc::cli {
namespace {

constexpr char kKeygenEpilog[] =
    "How the keys fit together:\n"
    "  The coordinator has one key pair; each worker has its own. A worker proves who it is with\n"
    "  its secret key, and checks that it talks to the real coordinator with the coordinator's\n"
    "  public key. The coordinator lets in only workers whose public key is on its allow-list;\n"
    "  any other peer fails the handshake and cannot send a single message.\n"
    "\n"
    "  clisc keygen --out keys/coordinator    # on the coordinator: coordinator.key + .pub\n"
    "  clisc keygen --out keys/worker1        # on each worker: worker1.key + .pub\n"
    "  Then copy each worker's .pub into the coordinator's allow/ directory, and\n"
    "  coordinator.pub to every worker.\n"
    "\n"
    "  coordinator:  --curve-key keys/coordinator.key --curve-allow allow/\n"
    "                (--curve-allow takes a directory of .pub files, or one file with one\n"
    "                public key per line; '#' starts a comment line)\n"
    "  worker:       --curve-key keys/worker1.key --curve-server-key keys/coordinator.pub\n"
    "\n"
    "  A .key file holds the secret key: it is written mode 0600, and clisc refuses to read one\n"
    "  that group or others can read (fix it with chmod 600 FILE). Copy only .pub files between\n"
    "  machines; a worker's .key belongs on that worker alone. To revoke a worker, remove its\n"
    "  .pub from the allow-list and restart the coordinator.\n"
    "\n"
    "Exit status: 0 on success, 1 when a file cannot be written or read (or exists without\n"
    "--force), 2 for usage errors.\n";

// `--out keys/worker1.key` means the stem keys/worker1, not keys/worker1.key.key.
std::string StemOf(std::string out) {
  for (const std::string suffix : {".key", ".pub"}) {
    if (out.size() > suffix.size() &&
        out.compare(out.size() - suffix.size(), suffix.size(), suffix) == 0) {
      return out.substr(0, out.size() - suffix.size());
    }
  }
  return out;
}

int PrintPublic(const std::string& file) {
  auto keys = ReadCurveKeyFile(file);
  if (!keys.ok()) {
    std::cerr << "error: " << keys.status().message() << "\n";
    return kExitFailure;
  }
  std::cout << keys->public_z85 << "\n";
  return kExitOk;
}

int Generate(const std::string& out, bool force) {
  const std::string stem = StemOf(out);
  auto keys = GenerateCurveKeyPair();
  if (!keys.ok()) {
    std::cerr << "error: " << keys.status().message() << "\n";
    return kExitFailure;
  }
  Status written = WriteCurveKeyFiles(stem, *keys, force);
  if (!written.ok()) {
    std::cerr << "error: " << written.message()
              << (written.code() == StatusCode::kAlreadyExists ? " (pass --force to replace it)"
                                                               : "")
              << "\n";
    return kExitFailure;
  }
  std::cerr << "wrote " << stem << ".key (secret, mode 0600) and " << stem
            << ".pub (public, share it)\n";
  std::cout << keys->public_z85 << "\n";
  return kExitOk;
}

int RunKeygen(const std::vector<std::string>& args) {
  ArgParser parser("keygen", "keygen --out STEM [--force] | keygen --print-public FILE",
                   "Create a CurveZMQ key pair (STEM.key, secret, and STEM.pub, public) and print "
                   "its public key, or print the public key of an existing key file.");
  parser.Option("out", "STEM", "write STEM.key and STEM.pub (directories are created)")
      .Flag("force", "replace existing STEM.key / STEM.pub")
      .Option("print-public", "FILE", "print the public key of a .key or .pub file and exit")
      .Epilog(kKeygenEpilog);
  if (int rc = ParseCommandLine(parser, args); rc >= 0) return rc;

  const bool has_out = parser.Has("out");
  const bool has_print = parser.Has("print-public");
  if (has_out == has_print) {
    std::cerr << "error: clisc keygen: give exactly one of --out STEM or --print-public FILE "
                 "(see clisc keygen --help)\n";
    return kExitUsage;
  }
  if (has_print) {
    if (parser.GetFlag("force")) {
      std::cerr << "error: clisc keygen: --force only applies to --out\n";
      return kExitUsage;
    }
    return PrintPublic(parser.Get("print-public"));
  }
  if (StemOf(parser.Get("out")).empty()) {
    std::cerr << "error: clisc keygen: --out needs a file name stem, e.g. keys/worker1\n";
    return kExitUsage;
  }
  return Generate(parser.Get("out"), parser.GetFlag("force"));
}

}  // namespace
CLISC_REGISTER_COMMAND("keygen", "create CurveZMQ key pairs for the coordinator and workers",
                       RunKeygen);
}  // namespace clisc::cli
