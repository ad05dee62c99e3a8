// What backs the method roles of `clisc worker` in this executable. Implemented twice: the plain
// `clisc` binary (worker_backends_plain.cc) has the heuristic backends only and no LibTorch, so it
// starts fast and small; `clisc-torch` (worker_backends_torch.cc) adds the LibTorch models.
#pragma once

#include "workers/roles/method_backends.h"

namespace clisc::cli {

roles::MethodBackends WorkerMethodBackends();
// True in clisc-torch: the roles that need LibTorch run here, and the worker never re-executes.
bool WorkerHasTorch();

}  // namespace clisc::cli
