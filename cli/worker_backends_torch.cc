// clisc-torch: the LibTorch models (CLIP, SAM, the slice classifier) behind the method roles.
#include "cli/worker_backends.h"
#include "workers/roles/model_backends.h"

namespace clisc::cli {

roles::MethodBackends WorkerMethodBackends() { return roles::ModelMethodBackends(); }
bool WorkerHasTorch() { return true; }

}  // namespace clisc::cli
