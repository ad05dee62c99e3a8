#include "cli/torch_exec.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

namespace clisc::cli {

namespace fs = std::filesystem;

std::optional<std::string> FirstRoleNeedingTorch(
    const std::vector<std::string>& roles,
    const std::function<bool(std::string_view)>& needs_torch) {
  for (const std::string& role : roles) {
    if (needs_torch(role)) return role;
  }
  return std::nullopt;
}

StatusOr<fs::path> FindTorchBinary(const char* env_override, const fs::path& self_executable) {
  const bool from_env = env_override != nullptr && *env_override != '\0';
  const fs::path candidate =
      from_env ? fs::path(env_override) : self_executable.parent_path() / kTorchBinaryName;
  const std::string origin =
      from_env ? std::string(kTorchBinaryEnv) + "=" + candidate.string()
               : candidate.string() + " (beside " + self_executable.filename().string() + ")";
  std::error_code error;
  if (!fs::exists(candidate, error)) return NotFoundError(origin + " does not exist");
  if (!fs::is_regular_file(candidate, error) || ::access(candidate.c_str(), X_OK) != 0) {
    return NotFoundError(origin + " is not an executable file");
  }
  return candidate;
}

namespace {

// The arguments the kernel recorded for this process, NUL-separated.
StatusOr<std::vector<std::string>> OwnCommandLine() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) return InternalError("cannot read /proc/self/cmdline");
  std::vector<std::string> args;
  size_t start = 0;
  while (start < bytes.size()) {
    size_t end = bytes.find('\0', start);
    if (end == std::string::npos) end = bytes.size();
    args.push_back(bytes.substr(start, end - start));
    start = end + 1;
  }
  if (args.empty()) return InternalError("/proc/self/cmdline is empty");
  return args;
}

}  // namespace

Status ExecTorchBinaryFor(std::string_view role) {
  const std::string why = "role '" + std::string(role) +
                          "' runs networks, which need LibTorch and so the " + kTorchBinaryName +
                          " executable";
  const std::string fix =
      std::string("; build clisc with LibTorch (CLISC_WITH_TORCH=ON) so that ") + kTorchBinaryName +
      " is installed next to clisc, or set " + kTorchBinaryEnv + " to its path";
  std::error_code error;
  const fs::path self = fs::read_symlink("/proc/self/exe", error);
  StatusOr<fs::path> binary = FindTorchBinary(std::getenv(kTorchBinaryEnv), self);
  if (!binary.ok())
    return FailedPreconditionError(why + ", but " + binary.status().message() + fix);
  StatusOr<std::vector<std::string>> args = OwnCommandLine();
  if (!args.ok()) return FailedPreconditionError(why + ", but " + args.status().message());

  (*args)[0] = binary->string();
  std::vector<char*> argv;
  argv.reserve(args->size() + 1);
  for (std::string& arg : *args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::fflush(nullptr);
  ::execv(binary->c_str(), argv.data());
  const int exec_errno = errno;
  return FailedPreconditionError(why + ", but starting " + binary->string() +
                                 " failed: " + std::strerror(exec_errno) + fix);
}

}  // namespace clisc::cli
