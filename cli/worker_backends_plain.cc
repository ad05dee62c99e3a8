// The plain clisc binary: no models. A worker asked for a role that needs them re-executes
// itself as clisc-torch (cli/torch_exec.h).
#include "cli/worker_backends.h"

namespace clisc::cli {

roles::MethodBackends WorkerMethodBackends() { return {}; }
bool WorkerHasTorch() { return false; }

}  // namespace clisc::cli
