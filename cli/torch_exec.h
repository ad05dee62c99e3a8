// `clisc worker` with a role that runs networks (roles::RoleNeedsTorch) re-executes itself as
// clisc-torch, the same CLI linked with LibTorch, with the same arguments. The plain binary stays
// free of LibTorch, whose static initialization costs ~0.7 s and 150 MB per process start.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace clisc::cli {

// The environment variable that names the clisc-torch executable explicitly.
inline constexpr const char* kTorchBinaryEnv = "CLISC_TORCH_BINARY";
inline constexpr const char* kTorchBinaryName = "clisc-torch";

// The first of `roles` for which `needs_torch` holds.
std::optional<std::string> FirstRoleNeedingTorch(
    const std::vector<std::string>& roles,
    const std::function<bool(std::string_view)>& needs_torch);

// `env_override` when set and non-empty (the value of CLISC_TORCH_BINARY), otherwise clisc-torch
// in the folder of `self_executable`. NOT_FOUND when that is not an executable file, naming the
// path and where it came from.
StatusOr<std::filesystem::path> FindTorchBinary(const char* env_override,
                                                const std::filesystem::path& self_executable);

// Replaces the process by clisc-torch (found as FindTorchBinary does, from the environment and
// /proc/self/exe) with this process's own arguments (/proc/self/cmdline), argv[0] becoming its
// path. Returns only when that fails: FAILED_PRECONDITION with a message that names `role` and
// says the build must include LibTorch.
Status ExecTorchBinaryFor(std::string_view role);

}  // namespace clisc::cli
