// The roles that run the CLISC method's stages 0-8 on a worker (the stage table is
// coordinator/method_plan.h): prep (stage 0), clip (1), cam (2-7: classifier training, LayerCAM,
// CAM post-processing and AMDA), sam (8) and reduce (the CAM threshold search and the stage
// quality summary). Role code is torch-free; the models come in through MethodBackends.
#pragma once

#include "common/status.h"
#include "workers/roles/method_backends.h"
#include "workers/runtime/role_registry.h"

namespace clisc::roles {

// Role names that need the LibTorch binary (clisc-torch) to run.
bool RoleNeedsTorch(std::string_view role);

// Registers prep, reduce, and, when `backends` can build them, clip, sam and cam.
Status RegisterMethodRoles(worker::RoleRegistry& registry, const MethodBackends& backends);

}  // namespace clisc::roles
